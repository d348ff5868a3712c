"""Options and helpers shared by the commands."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from restore.batch import sample_path
from restore.errors import InputError, RestoreError
from restore.io import FORMATS, atomic_write, format_for_path, make_folder
from restore.pipeline import Plan, options_from_json, process
from restore.settings import Settings, describe
from restore.tasks.base import Context

InputsArg = Annotated[list[str], typer.Argument(help="image files, or - for stdin", show_default=False, metavar="IMAGE")]
OutputOpt = Annotated[str, typer.Option("--output", "-o", metavar="PATH", help="output file, folder (several inputs), or - for stdout", show_default=False)]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", metavar="DEVICE", help="auto, cpu or cuda [default: RESTORE_DEVICE, else auto]", show_default=False)]
PrecisionOpt = Annotated[Optional[str], typer.Option("--precision", metavar="PRECISION", help="auto, fp32, int8 or fp16 [default: RESTORE_PRECISION, else auto: int8 on CPU where it keeps the model's quality, fp16 on CUDA]", show_default=False)]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", metavar="N", help="ONNX Runtime threads; 0 = all cores [default: RESTORE_THREADS, else 0]", show_default=False)]
TileOpt = Annotated[Optional[int], typer.Option("--tile", metavar="PIXELS", help="largest tile side in pixels [default: RESTORE_TILE_SIZE, else 768]", show_default=False)]
FormatOpt = Annotated[Optional[str], typer.Option("--format", "-f", metavar="FORMAT", help=f"output format: {', '.join(sorted(set(FORMATS)))} [default: the output's suffix, else the input's]", show_default=False)]
OptionsOpt = Annotated[Optional[str], typer.Option("--options", metavar="JSON", help="task options as a JSON object; the flags above take precedence", show_default=False)]


def settings_from(device: str | None, threads: int | None, tile: int | None, precision: str | None = None) -> Settings:
    """Environment (RESTORE_*) first, flags over it."""
    overrides = {k: v for k, v in {"device": device, "threads": threads, "tile_size": tile, "precision": precision}.items() if v is not None}
    try:
        return Settings(**overrides)
    except ValidationError as e:
        raise InputError(f"bad setting: {describe(e)}") from None


def parse_options(text: str | None, fmt: str | None = None, **flags) -> dict:
    """--options JSON, with the task's own flags (such as --strength) and --format over it."""
    return options_from_json(text) | {k: v for k, v in {**flags, "format": fmt}.items() if v is not None}


def output_suffix(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    if fmt.lower() not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose from {', '.join(sorted(FORMATS))}")
    return "." + fmt.lower()


def check_target(target: Path | str, fmt: str | None) -> None:
    """An output file whose suffix names no format we write, or whose folder cannot be made, is refused
    before any work (without --format, out.gif would get PNG bytes under a GIF name)."""
    if str(target) == "-":
        return
    suffix = Path(target).suffix
    if fmt is None and suffix and format_for_path(target) is None:
        raise InputError(f"{target}: {suffix} is not a format restore writes; use {', '.join('.' + f for f in sorted(FORMATS))} "
                         "or give --format")
    make_folder(Path(target).parent)


def restore_file(source: Path | str, target: Path | str, request: Plan, ctx: Context, guidance: dict[str, Path] | None = None) -> dict:
    """Read, run the pipeline, write. '-' reads stdin or writes stdout. guidance: kind -> image file."""
    check_target(target, request.format)
    if str(target) == "-" and request.results > 1:
        raise InputError(f"{request.results} results cannot go to stdout; give an output file or folder")
    stdin = str(source) == "-"
    out = process(sys.stdin.buffer if stdin else source, request, ctx, guidance, None if str(target) == "-" else target)
    if str(target) == "-":
        sys.stdout.buffer.write(out.blobs[0])
        sys.stdout.buffer.flush()
    else:
        for i, blob in enumerate(out.blobs):
            atomic_write(sample_path(Path(target), i), blob)
    return out.metrics


def fail(error: RestoreError) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(1)
