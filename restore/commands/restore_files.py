"""`restore denoise IN... -o OUT` (and later tasks): restore single files, or stdin to stdout with '-'."""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer
from tqdm import tqdm

from restore.batch import BatchItem, overwrites
from restore.commands.common import DeviceOpt, InputsArg, OutputOpt, FormatOpt, OptionsOpt, ThreadsOpt, TileOpt, fail, output_suffix, parse_options, restore_file, settings_from
from restore.errors import InputError, RestoreError
from restore.pipeline import result_count, validate
from restore.tasks.base import Context


def restore_many(task: str, inputs: list[str], output: str, options: dict, fmt: str | None, settings, mask: Path | None = None) -> None:
    suffix = output_suffix(fmt)
    if mask and len(inputs) > 1:
        raise InputError("--mask belongs to one image: give a single input")
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
    files = [BatchItem(Path(s), Path(t)) for s, t in targets.items() if "-" not in (s, str(t))]
    refused = {str(item.source): reason for item, reason in overwrites(files, result_count(validate(task, options)[1])).items()}
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
                metrics = restore_file(source, target, task, options, ctx, fmt, mask)
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
    sigma: Annotated[Optional[str], typer.Option(help="noise level 0-100 on the 0-255 scale, or auto")] = None,
    options: OptionsOpt = None,
    fmt: FormatOpt = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    tile: TileOpt = None,
) -> None:
    """Remove noise from photos with the denoising autoencoder."""
    try:
        value = None if sigma is None else sigma if sigma == "auto" else _number(sigma, "--sigma")
        restore_many("denoise", inputs, output, parse_options(options, sigma=value), fmt, settings_from(device, threads, tile))
    except RestoreError as e:
        fail(e)


def dewatermark(
    inputs: InputsArg,
    output: OutputOpt,
    mask: Annotated[Optional[Path], typer.Option(help="optional: an image, white where the watermark is (exact or brushed loosely around it), to guide the model")] = None,
    ensemble: Annotated[Optional[bool], typer.Option("--ensemble/--one-pass", help="also run on the photo turned 180 degrees and average (the default; twice the time)")] = None,
    options: OptionsOpt = None,
    fmt: FormatOpt = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    tile: TileOpt = None,
) -> None:
    """Find and remove visible watermarks (text, logos, tiled patterns); no mask needed."""
    try:
        restore_many("dewatermark", inputs, output, parse_options(options, ensemble=ensemble), fmt, settings_from(device, threads, tile), mask)
    except RestoreError as e:
        fail(e)


def colorize(
    inputs: InputsArg,
    output: OutputOpt,
    samples: Annotated[Optional[int], typer.Option(help="colourings per photo, 1-8: NAME.png is the most likely, then NAME_1.png ...")] = None,
    seed: Annotated[Optional[int], typer.Option(help="seed for the samples after the first (same seed, same samples)")] = None,
    options: OptionsOpt = None,
    fmt: FormatOpt = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Colorize gray photos with the variational autoencoder; colour inputs are made gray first."""
    try:
        restore_many("colorize", inputs, output, parse_options(options, samples=samples, seed=seed), fmt, settings_from(device, threads, None))
    except RestoreError as e:
        fail(e)


def _show(bar: tqdm, done: int, total: int) -> None:
    if bar.total != total:  # a new task in a chain starts its own count
        bar.reset(total)
    bar.update(done - bar.n)


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{flag} must be a number or 'auto', not {text!r}") from None
