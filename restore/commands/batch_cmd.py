"""`restore batch IN_DIR OUT_DIR --task ...`: a whole folder in-process, with a progress bar and a summary."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from tqdm import tqdm

from restore.batch import SUMMARY, BatchItem, Outcome, guidance_for, overwrites, plan_batch, run_batch, summarize
from restore.commands.common import DeviceOpt, PrecisionOpt, FormatOpt, OptionsOpt, ThreadsOpt, TileOpt, fail, output_suffix, parse_options, restore_file, settings_from
from restore.errors import InputError, RestoreError
from restore.io import atomic_write, make_folder
from restore.pipeline import plan
from restore.tasks.base import Context


def batch(
    in_dir: Annotated[Path, typer.Argument(help="folder of images", metavar="IN_DIR")],
    out_dir: Annotated[Path, typer.Argument(help="folder for the results (created)", metavar="OUT_DIR")],
    task: Annotated[str, typer.Option("--task", "-t", metavar="TASK", help="task or chain, e.g. denoise")] = "denoise",
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="include subfolders, mirrored in OUT_DIR")] = False,
    skip_existing: Annotated[bool, typer.Option("--skip-existing", help="leave outputs that already exist")] = False,
    include: Annotated[Optional[list[str]], typer.Option("--include", "-i", metavar="GLOB", help="glob of file names to take (repeatable); default: all image types")] = None,
    mask: Annotated[Optional[Path], typer.Option(metavar="DIR", help="dewatermark: a folder of masks, each named as its photo (any image suffix)", show_default=False)] = None,
    hints: Annotated[Optional[Path], typer.Option(metavar="DIR", help="colorize: a folder of hint images, each named as its photo (any image suffix)", show_default=False)] = None,
    options: OptionsOpt = None,
    fmt: FormatOpt = None,
    summary: Annotated[Optional[Path], typer.Option(metavar="PATH", help=f"where to write the JSON summary (default: OUT_DIR/{SUMMARY})")] = None,
    server: Annotated[Optional[str], typer.Option(metavar="URL", help="send the files through the service at this URL instead of running here")] = None,
    api_key: Annotated[Optional[str], typer.Option(metavar="KEY", envvar="RESTORE_API_KEY", help="X-API-Key for --server")] = None,
    in_flight: Annotated[int, typer.Option(min=1, metavar="N", help="jobs in flight at once with --server")] = 8,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = None,
    tile: TileOpt = None,
) -> None:
    """Restore every image in a folder. Exit code 1 if any file failed; the others are still done."""
    try:
        folders = {k: v for k, v in {"mask": mask, "hints": hints}.items() if v is not None}
        for kind, folder in folders.items():
            if not folder.is_dir():
                raise InputError(f"--{kind} {folder} is not a folder")
        opts = parse_options(options, fmt)
        request = plan(task, opts, tuple(folders))  # a bad task or option is one error, not one per file
        tasks = ",".join(request.tasks)
        items = plan_batch(in_dir, out_dir, recursive, include or (), output_suffix(fmt))
        refused = overwrites(items, request.results)
        make_folder(out_dir)
        if summary is not None:
            make_folder(summary.parent)
        ctx = None if server else Context.create(settings_from(device, threads, tile, precision))
    except RestoreError as e:
        fail(e)

    def guidance(item: BatchItem) -> dict[str, Path]:
        return guidance_for(item.source, in_dir, folders)

    def process(item: BatchItem) -> dict:
        given = guidance(item)
        return restore_file(item.source, item.target, plan(task, opts, tuple(given)), ctx, given)

    runnable = [item for item in items if item not in refused]
    with tqdm(total=len(items), unit="img", disable=None) as bar:
        def done(outcome):
            bar.update()
            if outcome.status == "failed":
                tqdm.write(f"failed: {outcome.input}: {outcome.error}")

        failed_first = {item: Outcome(str(item.source), str(item.target), "failed", reason) for item, reason in refused.items()}
        for outcome in failed_first.values():
            done(outcome)

        if server:
            # The one reach from the core command into the service's client, only when asked for.
            from restore.api.client import ServiceClient, run_remote_batch

            try:
                outcomes = run_remote_batch(runnable, ServiceClient(server, api_key), tasks, opts, fmt, out_dir, skip_existing, in_flight, done,
                                            guidance=guidance)
            except RestoreError as e:
                fail(e)
        else:
            outcomes = run_batch(runnable, process, skip_existing, done)
    ran = dict(zip(runnable, outcomes))
    outcomes = [failed_first.get(item) or ran[item] for item in items]  # in the inputs' order
    report = summarize(outcomes, task=tasks, options=opts, input=str(in_dir), output=str(out_dir), server=server)
    summary_path = summary or out_dir / SUMMARY
    try:
        atomic_write(summary_path, json.dumps(report, indent=2).encode())
    except RestoreError as e:
        fail(e)
    typer.echo(f"{report['ok']} restored, {report['skipped']} skipped, {report['failed']} failed; summary: {summary_path}", err=True)
    if report["failed"]:
        raise typer.Exit(1)
