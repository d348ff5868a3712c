"""`restore denoise IN... -o OUT`, `restore dewatermark ...`, `restore colorize ...`: restore single files,
or stdin to stdout with '-'."""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer
from tqdm import tqdm

from restore.batch import BatchItem, overwrites
from restore.commands.common import (DeviceOpt, PrecisionOpt, FormatOpt, InputsArg, OptionsOpt, OutputOpt, ThreadsOpt, TileOpt, check_target, fail,
                                     output_suffix, parse_options, restore_file, settings_from)
from restore.errors import InputError, RestoreError
from restore.guidance import KINDS, parse_point
from restore.pipeline import plan
from restore.tasks.base import Context
from restore.tasks.colorize import ColorizeOptions
from restore.tasks.denoise import DenoiseOptions


def _default(options, name: str) -> str:
    return f"[default: {options.model_fields[name].default}]"


def restore_many(task: str, inputs: list[str], output: str, options: dict, settings, guidance: dict[str, Path] | None = None) -> None:
    guidance = {k: v for k, v in (guidance or {}).items() if v is not None}
    request = plan(task, options, tuple(guidance))  # a bad task or option is one error, not one per file
    suffix = output_suffix(request.format)
    if guidance and len(inputs) > 1:
        raise InputError(f"--{next(iter(guidance))} belongs to one image: give a single input")
    if len(inputs) > 1 and (output == "-" or Path(output).suffix):
        raise InputError(f"{len(inputs)} inputs need an output folder, not {output!r}")
    if "-" in inputs and len(inputs) > 1:
        raise InputError("'-' (stdin) can only be the single input")
    targets = {}
    for source in inputs:
        if output == "-" or len(inputs) == 1 and Path(output).suffix:
            targets[source] = output
        else:
            target = Path(output) / (Path(source).name if source != "-" else "stdin.png")
            targets[source] = target.with_suffix(suffix) if suffix else target
        check_target(targets[source], request.format)
    files = [BatchItem(Path(s), Path(t)) for s, t in targets.items() if "-" not in (s, str(t))]
    refused = {str(item.source): reason for item, reason in overwrites(files, request.results).items()}
    ctx = Context.create(settings)
    failed = 0
    for source, target in targets.items():
        if source in refused:
            failed += 1
            typer.echo(f"error: {source}: {refused[source]}", err=True)
            continue
        try:
            with tqdm(desc=Path(source).name, unit="tile", leave=False, disable=None) as bar:  # shown on a terminal only
                ctx.progress = partial(_show, bar)
                metrics = restore_file(source, target, request, ctx, guidance)
            if target != "-":
                typer.echo(f"{source} -> {target}  {json.dumps(metrics['tasks'])}", err=True)
        except RestoreError as e:
            failed += 1
            typer.echo(f"error: {source}: {e}", err=True)
    if failed:
        raise typer.Exit(1)


def denoise(
    inputs: InputsArg,
    output: OutputOpt,
    strength: Annotated[Optional[float], typer.Option(metavar="0-1",
        help=f"0-1: up to 0.5 removes the colour noise, above it the brightness grain too {_default(DenoiseOptions, 'strength')}",
        show_default=False)] = None,
    sigma: Annotated[Optional[str], typer.Option(hidden=True, help="replaced by --strength")] = None,
    options: OptionsOpt = None,
    fmt: FormatOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = None,
    tile: TileOpt = None,
) -> None:
    try:
        restore_many("denoise", inputs, output, parse_options(options, fmt, strength=strength, sigma=sigma), settings_from(device, threads, tile, precision))
    except RestoreError as e:
        fail(e)


def dewatermark(
    inputs: InputsArg,
    output: OutputOpt,
    mask: Annotated[Optional[Path], typer.Option(metavar="IMAGE", help=f"optional: {KINDS['mask'].help}, to guide the model", show_default=False)] = None,
    ensemble: Annotated[Optional[bool], typer.Option("--ensemble/--one-pass", help="also run on the photo turned 180 degrees and "
                                                     "average (twice the time) [default: --ensemble]", show_default=False)] = None,
    options: OptionsOpt = None,
    fmt: FormatOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = None,
    tile: TileOpt = None,
) -> None:
    try:
        restore_many("dewatermark", inputs, output, parse_options(options, fmt, ensemble=ensemble), settings_from(device, threads, tile, precision), {"mask": mask})
    except RestoreError as e:
        fail(e)


def colorize(
    inputs: InputsArg,
    output: OutputOpt,
    samples: Annotated[Optional[int], typer.Option(metavar="N", help="colourings per photo, 1-8: NAME.png is the most likely, then NAME_1.png ... "
                                                   f"{_default(ColorizeOptions, 'samples')}", show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option(metavar="N", help=f"seed for the samples after the first (same seed, same samples) "
                                                f"{_default(ColorizeOptions, 'seed')}", show_default=False)] = None,
    hint: Annotated[Optional[list[str]], typer.Option("--hint", metavar="X,Y,#RRGGBB", help="a colour you know, X,Y,#RRGGBB: pixels from the top left "
                                                      "(repeatable)", show_default=False)] = None,
    hints: Annotated[Optional[Path], typer.Option(metavar="IMAGE", help=f"{KINDS['hints'].help} (PNG with alpha)", show_default=False)] = None,
    options: OptionsOpt = None,
    fmt: FormatOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    try:
        opts = parse_options(options, fmt, samples=samples, seed=seed)
        if hint:
            opts["hints"] = list(opts.get("hints", [])) + [{"x": x, "y": y, "color": c} for x, y, c in map(parse_point, hint)]
        restore_many("colorize", inputs, output, opts, settings_from(device, threads, None, precision), {"hints": hints})
    except RestoreError as e:
        fail(e)


def _show(bar: tqdm, done: int, total: int) -> None:
    if bar.total != total:  # a new task in a chain starts its own count
        bar.reset(total)
    bar.update(done - bar.n)
