"""`restore bench denoise --data DIR`: one table of PSNR/SSIM and seconds per megapixel, with baselines."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from restore.commands.common import DeviceOpt, ThreadsOpt, fail, settings_from
from restore.errors import InputError, RestoreError

PUBLISHED = (
    "Published (CBSD68, paper protocol, PSNR dB, sigma 15/25/50): CBM3D 33.52/30.71/27.38, CDnCNN-B 33.90/31.24/27.95, "
    "FFDNet 33.87/31.21/27.96, DRUNet 34.30/31.69/28.51 (Zhang et al., TPAMI 2021, cszn/DPIR figs/color_psnr.png); "
    "SwinIR 34.42/31.78/28.56 (JingyunLiang/SwinIR figs/color_image_denoising.png)."
)


def bench(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="denoise, dewatermark, colorize, or service (the HTTP service end to end)")],
    data: Annotated[Optional[Path], typer.Option("--data", help="folder of clean images (denoise)")] = None,
    sigma: Annotated[list[float], typer.Option("--sigma", help="noise levels on the 0-255 scale")] = [15, 25, 50],
    protocol: Annotated[list[str], typer.Option("--protocol", help="8bit and/or paper")] = ["8bit", "paper"],
    limit: Annotated[Optional[int], typer.Option(help="use only the first N images (BM3D is slow)")] = None,
    baseline: Annotated[list[str], typer.Option("--baseline", help="nlm and/or bm3d")] = ["nlm", "bm3d"],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="also write the rows as JSON")] = None,
    seed: Annotated[int, typer.Option(help="dewatermark: seed of the synthesized watermarks")] = 0,
    fonts: Annotated[Optional[list[Path]], typer.Option("--fonts", help="dewatermark: font folders (default: the training fonts)")] = None,
    words: Annotated[Optional[str], typer.Option(help="dewatermark: comma-separated watermark words (default: the training words)")] = None,
    logos: Annotated[Optional[Path], typer.Option(help="dewatermark: a folder of logo PNGs with alpha; every mark is one of them instead of text")] = None,
    turned: Annotated[bool, typer.Option("--turned", help="dewatermark: every mark turned a quarter (running up or down the photo)")] = False,
    temperature: Annotated[Optional[float], typer.Option(help="colorize: the annealed mean's temperature (default: the model's)")] = None,
    jobs: Annotated[int, typer.Option(help="service: small-image jobs (large ones: a tenth)")] = 50,
    redis_url: Annotated[str, typer.Option(help="service: a Redis database the bench may flush")] = "redis://127.0.0.1:6379/14",
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Benchmark a task against classical baselines on the same inputs, in this process.

    Lists may be given as repeated flags or as one flag with several values: --sigma 15 25 50.
    """
    sigma, protocol, baseline = _more_values(ctx.args, sigma, protocol, baseline)
    if task == "service":
        return service_bench(jobs, redis_url, threads or 2, json_out)
    if task == "dewatermark":
        return dewatermark_bench(data, limit, seed, fonts, words, logos, turned, settings_from(device, threads, None), json_out)
    if task == "colorize":
        return colorize_bench(data, limit, seed, temperature, settings_from(device, threads, None), json_out)
    from restore.bench.denoise import PROTOCOLS, large_image_speed, run_bench
    from restore.batch import find_images
    from restore.tasks.base import Context

    if task != "denoise":
        fail(RestoreError(f"bench is available for denoise, dewatermark, colorize and service, not {task!r}"))
    if data is None:
        fail(RestoreError("bench denoise needs --data DIR (a folder of clean images)"))
    bad = [p for p in protocol if p not in PROTOCOLS] + [b for b in baseline if b not in ("nlm", "bm3d")]
    if bad:
        fail(RestoreError(f"unknown protocol or baseline: {', '.join(bad)}"))
    try:
        paths = find_images(data)[:limit]
        if not paths:
            raise RestoreError(f"no images in {data}")
        ctx = Context.create(settings_from(device, threads, None))
        rows = run_bench(paths, sigma, protocol, ctx, baseline, progress=lambda m: typer.echo(m, err=True))
        speed = large_image_speed(ctx)
    except RestoreError as e:
        fail(e)
    typer.echo(f"\n{task} on {data} ({len(paths)} images; seeds fixed)\n")
    typer.echo("| protocol | sigma | method | PSNR dB | PSNR - ours | SSIM | s/MP | time / ours | notes |")
    typer.echo("|---|---|---|---|---|---|---|---|---|")
    ours = {(r.protocol, r.sigma): r for r in rows if r.method == "restore (ours)"}
    for r in rows:
        ref = ours[(r.protocol, r.sigma)]
        ratio = f"{r.sec_per_mp / ref.sec_per_mp:.1f}x" if r.sec_per_mp else ""
        typer.echo(f"| {r.protocol} | {r.sigma:g} | {r.method} | {r.psnr:.2f} | {r.psnr - ref.psnr:+.2f} | {r.ssim:.4f} | {r.sec_per_mp:.2f} | {ratio} | {r.notes} |")
    typer.echo(f"\nrestore (ours) on a 2048x2048 image (tiled, {ctx.settings.tile_size} px tiles): {speed:.2f} s/MP")
    typer.echo(f"\n{PUBLISHED}")
    if json_out:
        report = {"task": task, "data": str(data), "images": len(paths), "large_image_sec_per_mp": speed, "rows": [asdict(r) for r in rows]}
        json_out.write_text(json.dumps(report, indent=2))


def _more_values(extra: list[str], sigma: list[float], protocol: list[str], baseline: list[str]):
    """Values that followed a list flag (--sigma 15 25 50) arrive as extra arguments; give each its list."""
    for value in extra:
        try:
            sigma = [*sigma, float(value)]
        except ValueError:
            if value in ("8bit", "paper"):
                protocol = [*protocol, value]
            elif value in ("nlm", "bm3d"):
                baseline = [*baseline, value]
            else:
                fail(RestoreError(f"unexpected argument {value!r}"))
    return list(dict.fromkeys(sigma)), list(dict.fromkeys(protocol)), list(dict.fromkeys(baseline))


def service_bench(jobs: int, redis_url: str, threads: int, json_out: Path | None) -> None:
    # The service bench drives the HTTP API, so it lives with it; imported only when asked for.
    from api.bench import run_service_bench

    rows = run_service_bench(redis_url, jobs, threads)
    typer.echo(f"\nservice: one worker (concurrency 1, {threads} ONNX Runtime threads), denoise, PNG in and out\n")
    typer.echo("| image | jobs | bare pipeline ms | end-to-end median ms | p90 ms | overhead median ms | end-to-end / bare | jobs/s |")
    typer.echo("|---|---|---|---|---|---|---|---|")
    for r in rows:
        typer.echo(f"| {r['size']} | {r['jobs']} | {r['bare_pipeline_ms']:.1f} | {r['e2e_median_ms']:.1f} | {r['e2e_p90_ms']:.1f} | "
                   f"{r['overhead_median_ms']:.1f} | {r['e2e_over_bare']:.2f} | {r['jobs_per_s']:.2f} |")
    typer.echo("\noverhead = end-to-end time (POST to downloaded result) - the pipeline time the worker measured")
    if json_out:
        json_out.write_text(json.dumps(rows, indent=2))


def dewatermark_bench(data: Path | None, limit: int | None, seed: int, fonts, words: str | None, logos: Path | None,
                      turned: bool, settings, json_out: Path | None) -> None:
    from restore.batch import find_images
    from restore.bench.dewatermark import run_bench
    from restore.tasks.base import Context

    if data is None:
        fail(RestoreError("bench dewatermark needs --data DIR (a folder of clean images)"))
    try:
        paths = find_images(data)[:limit]
        logo_files = find_images(logos) if logos else None
        if logos and not logo_files:
            raise InputError(f"no logo images in {logos}")
        rows = run_bench(paths, Context.create(settings), seed, fonts, tuple(w.strip() for w in words.split(",")) if words else None,
                         logo_files, turned)
    except RestoreError as e:
        fail(e)
    held_out = " with held-out fonts/words" if fonts or words else ""
    held_out += f", every mark a logo from {logos}" if logos else ""
    held_out += ", every mark turned a quarter" if turned else ""
    typer.echo(f"\ndewatermark on {data} ({len(paths)} images, watermarks synthesized with seed {seed}{held_out}, saved as 8-bit)\n")
    typer.echo("| method | PSNR dB | SSIM | PSNR in mask | PSNR outside mask | mask IoU | mask F1 | s/MP |")
    typer.echo("|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for r in rows:
        typer.echo(f"| {r.method} | {r.psnr:.2f} | {r.ssim:.4f} | {r.psnr_in_mask:.2f} | {r.psnr_outside:.2f} | "
                   f"{fmt(r.mask_iou)} | {fmt(r.mask_f1)} | {r.sec_per_mp:.2f} |")
    typer.echo("\nPublished, blind, on CLWD (a different watermark set): SplitNet and SLBR about 37-38 dB PSNR.")
    if json_out:
        json_out.write_text(json.dumps([asdict(r) for r in rows], indent=2))


def colorize_bench(data: Path | None, limit: int | None, seed: int, temperature: float | None, settings, json_out: Path | None) -> None:
    from restore.batch import find_images
    from restore.bench.colorize import SAMPLES, run_bench
    from restore.tasks.base import Context

    if data is None:
        fail(RestoreError("bench colorize needs --data DIR (a folder of colour photos)"))
    try:
        paths = find_images(data)[:limit]
        if not paths:
            raise RestoreError(f"no images in {data}")
        rows, extra = run_bench(paths, Context.create(settings), seed, temperature)
    except RestoreError as e:
        fail(e)
    typer.echo(f"\ncolorize on gray versions of {data} ({rows[0].images} images; L kept, a = b = 0; seed {seed}; "
               f"annealed-mean temperature {extra['temperature']:g})\n")
    # Colourfulness two ways: the set's mean against the truth's mean (how published colourfulness is quoted,
    # whether a method washes colour out) and the mean per-photo gap (whether it tells vivid from dull).
    truth = extra["truth_colourfulness"]
    typer.echo("| method | PSNR dB | PSNR - default | SSIM | colourfulness | minus truth's | mean abs gap per photo | s/MP |")
    typer.echo("|---|---|---|---|---|---|---|---|")
    ref = next(r for r in rows if r.method == "VAE, default sample")
    for r in rows:
        speed = "-" if r.sec_per_mp is None else f"{r.sec_per_mp:.2f}"
        typer.echo(f"| {r.method} | {r.psnr:.2f} | {r.psnr - ref.psnr:+.2f} | {r.ssim:.4f} | {r.colourfulness:.1f} | "
                   f"{r.colourfulness - truth:+.1f} | {r.colourfulness_gap:.1f} | {speed} |")
    typer.echo(f"\nground truth colourfulness {truth:.1f}; diversity (mean pairwise ab distance of "
               f"{SAMPLES} samples) {extra['diversity_ab']:.2f}; best-of-{SAMPLES} s/MP is for all {SAMPLES} samples")
    typer.echo("Published (ImageNet, not this set): PSNR CIC 22.64, DeOldify 24.11, DDColor 23.85 dB; colourfulness "
               "about 32-38 (Hasler-Suesstrunk), as issue 5 quotes them.")
    if json_out:
        json_out.write_text(json.dumps({"rows": [asdict(r) for r in rows], **extra}, indent=2))
