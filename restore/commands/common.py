"""Options and helpers shared by the commands."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from restore.batch import sample_path
from restore.errors import InputError, RestoreError
from restore.io import FORMATS, Limits, output_format, read_image, write_image
from restore.pipeline import options_from_json, run
from restore.settings import Settings
from restore.tasks.base import Context

InputsArg = Annotated[list[str], typer.Argument(help="image files, or - for stdin")]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="output file, folder (several inputs), or - for stdout")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto | cpu | cuda (default: RESTORE_DEVICE or auto)")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="ONNX Runtime threads; 0 = all cores")]
TileOpt = Annotated[Optional[int], typer.Option("--tile", help="largest tile side in pixels")]
FormatOpt = Annotated[Optional[str], typer.Option("--format", "-f", help=f"output format: {', '.join(sorted(set(FORMATS)))} (default: the input's)")]
OptionsOpt = Annotated[Optional[str], typer.Option("--options", help='task options as JSON, e.g. \'{"sigma": 25}\'')]


def settings_from(device: str | None, threads: int | None, tile: int | None) -> Settings:
    """Environment (RESTORE_*) first, flags over it."""
    overrides = {k: v for k, v in {"device": device, "threads": threads, "tile_size": tile}.items() if v is not None}
    try:
        return Settings(**overrides)
    except ValueError as e:
        raise InputError(str(e)) from None


def parse_options(text: str | None, **flags) -> dict:
    """--options JSON, with the task's own flags (such as --sigma) over it."""
    return options_from_json(text) | {k: v for k, v in flags.items() if v is not None}


def output_suffix(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    if fmt.lower() not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose from {', '.join(sorted(FORMATS))}")
    return "." + fmt.lower()


def restore_file(source: Path | str, target: Path | str, tasks: str, options: dict, ctx: Context, fmt: str | None,
                 mask: Path | None = None) -> dict:
    """Read, run the pipeline, write. '-' reads stdin or writes stdout. mask: the user's mask file."""
    limits = Limits(ctx.settings.max_bytes, ctx.settings.max_pixels)
    picture = read_image(sys.stdin.buffer if str(source) == "-" else source, limits)
    output_format(picture, target, fmt)  # a format that cannot hold the image is refused before the work
    result = run(tasks, picture, options, ctx, read_image(mask, limits) if mask else None)
    if str(target) == "-":
        if len(result.pictures) > 1:
            raise InputError(f"{len(result.pictures)} results cannot go to stdout; give an output file or folder")
        write_image(result.picture, sys.stdout.buffer, fmt)
        sys.stdout.buffer.flush()
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        for i, picture in enumerate(result.pictures):  # no --format: the target's suffix, else the input's format
            write_image(picture, sample_path(Path(target), i), fmt)
    return result.metrics


def fail(error: RestoreError) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(1)
