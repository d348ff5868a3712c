"""`restore bench TASK`: quality and speed next to baselines run in the same process on the same inputs.

List flags take several values after one flag (--sigma 15 25 50) or repeated flags (--sigma 15 --sigma 25).
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from restore.commands.common import DeviceOpt, ThreadsOpt, fail, settings_from
from restore.errors import InputError, RestoreError

LIST_FLAGS = ("--sigma", "--protocol", "--baseline", "--jpeg", "--hints")
PUBLISHED = (
    "Published (CBSD68, paper protocol, PSNR dB, sigma 15/25/50): CBM3D 33.52/30.71/27.38, CDnCNN-B 33.90/31.24/27.95, "
    "FFDNet 33.87/31.21/27.96, DRUNet 34.30/31.69/28.51 (Zhang et al., TPAMI 2021, cszn/DPIR figs/color_psnr.png); "
    "SwinIR 34.42/31.78/28.56 (JingyunLiang/SwinIR figs/color_image_denoising.png)."
)
PUBLISHED_COLORIZE = ("Published (ImageNet, not this set): PSNR CIC 22.64, DeOldify 24.11, DDColor 23.85 dB; colourfulness "
                      "about 32-38 (Hasler-Suesstrunk) (as DDColor, Kang et al., ICCV 2023, reports them). With user points, ImageNet: "
                      "Zhang et al. 2017 (Real-Time User-Guided Image Colorization) report gains of several dB from a handful of points.")


def expand_list_flags(argv: list[str]) -> list[str]:
    """`--sigma 15 25 50` as `--sigma 15 --sigma 25 --sigma 50`, for the list flags of `restore bench`."""
    out, current = [], None
    for arg in argv:
        if arg.startswith("-"):
            current = arg if arg in LIST_FLAGS else None
            out.append(arg)
        elif current and out[-1] != current:
            out += [current, arg]
        else:
            out.append(arg)
    return out


def bench(
    task: Annotated[str, typer.Argument(help="denoise, dewatermark, colorize, speed (every model and precision), or service (the HTTP service end to end)", metavar="TASK")],
    data: Annotated[Optional[Path], typer.Option("--data", metavar="DIR", help="folder of clean photos", show_default=False)] = None,
    sigma: Annotated[Optional[list[float]], typer.Option("--sigma", metavar="SIGMA...", help="denoise: Gaussian noise levels, 0-255 scale [default: 15 25 50]", show_default=False)] = None,
    protocol: Annotated[Optional[list[str]], typer.Option("--protocol", metavar="NAME...", help="denoise: 8bit and/or paper [default: both]", show_default=False)] = None,
    baseline: Annotated[Optional[list[str]], typer.Option("--baseline", metavar="NAME...", help="denoise: nlm and/or bm3d [default: both]", show_default=False)] = None,
    real: Annotated[Optional[Path], typer.Option("--real", metavar="DIR", help="denoise: a folder of NAME_real / NAME_mean pairs (real camera noise)", show_default=False)] = None,
    jpeg: Annotated[Optional[list[int]], typer.Option("--jpeg", metavar="QUALITY...", help="denoise: compress --data's photos at these JPEG qualities", show_default=False)] = None,
    clean: Annotated[bool, typer.Option("--clean", help="denoise: --data's photos as they are (how much of a clean photo the model changes)")] = False,
    against: Annotated[Optional[Path], typer.Option("--against", metavar="DIR", help="denoise: also run the model of this models folder (its manifest), for comparison", show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option(metavar="N", help="use only the first N images (BM3D is slow)", show_default=False)] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", metavar="PATH", help="also write the rows as JSON", show_default=False)] = None,
    seed: Annotated[int, typer.Option(metavar="N", help="dewatermark, colorize: seed of the synthesized marks or the hints and samples")] = 0,
    fonts: Annotated[Optional[list[Path]], typer.Option("--fonts", metavar="DIR", help="dewatermark: font folders [default: the training fonts]", show_default=False)] = None,
    words: Annotated[Optional[str], typer.Option(metavar="A,B,...", help="dewatermark: comma-separated watermark words [default: the training words]", show_default=False)] = None,
    logos: Annotated[Optional[Path], typer.Option(metavar="DIR", help="dewatermark: a folder of logo PNGs with alpha; every mark is one of them instead of text", show_default=False)] = None,
    turned: Annotated[bool, typer.Option("--turned", help="dewatermark: every mark turned a quarter (running up or down the photo)")] = False,
    hints: Annotated[Optional[list[int]], typer.Option("--hints", metavar="N...", help="colorize: rows with this many seeded hint points from the truth [default: 0 1 5 10 20]", show_default=False)] = None,
    temperature: Annotated[Optional[float], typer.Option(metavar="T", help="colorize: the annealed mean's temperature [default: the model's]", show_default=False)] = None,
    jobs: Annotated[int, typer.Option(metavar="N", help="service: small-image jobs (large ones: a tenth)")] = 50,
    megapixels: Annotated[float, typer.Option(metavar="MP", help="speed: the size of the timed photo")] = 12.0,
    models: Annotated[Optional[list[str]], typer.Option("--model", metavar="TASK", help="speed: time only this task's model (repeatable) [default: all]", show_default=False)] = None,
    tune: Annotated[bool, typer.Option("--tune", help="speed: also time tile sizes and how a worker's cores are best split")] = False,
    record: Annotated[bool, typer.Option("--record", help="speed: write each variant's measured quality and time into the manifest, and mark for auto an int8 variant that keeps the quality (0.05 dB) and saves time (0.9x or less)")] = False,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Benchmark a task against classical baselines on the same inputs, in this process."""
    try:
        if task == "service":
            return service_bench(threads or 2, json_out, jobs)
        if task == "speed":
            return speed_bench(settings_from(device, threads, None), data, limit or 8, megapixels, tune, json_out, record, models)
        if task == "dewatermark":
            return dewatermark_bench(data, limit, seed, fonts, words, logos, turned, settings_from(device, threads, None), json_out)
        if task == "colorize":
            return colorize_bench(data, limit, seed, hints or [0, 1, 5, 10, 20], temperature, settings_from(device, threads, None), json_out)
        if task != "denoise":
            raise InputError(f"bench is available for denoise, dewatermark, colorize, speed and service, not {task!r}")
        denoise_bench(data, real, sigma or [15, 25, 50], protocol or ["8bit", "paper"], baseline if baseline is not None else ["nlm", "bm3d"],
                      jpeg or [], clean, against, limit, settings_from(device, threads, None), json_out)
    except RestoreError as e:
        fail(e)


def _table(rows, ref_of, title: str, setting: str) -> None:
    """One markdown table: each row next to our model's row on the same inputs (PSNR difference, time ratio)."""
    typer.echo(f"\n{title}\n")
    typer.echo(f"| {setting} | method | PSNR dB | PSNR - ours | SSIM | s/MP | time / ours | notes |")
    typer.echo("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ref = ref_of(r)
        ratio = f"{r.sec_per_mp / ref.sec_per_mp:.1f}x" if r.sec_per_mp and ref.sec_per_mp else ""
        label = {"real": "real", "clean": "clean"}.get(r.protocol, f"{r.protocol} {r.sigma:g}")
        typer.echo(f"| {label} | {r.method} | {r.psnr:.2f} | {r.psnr - ref.psnr:+.2f} | {r.ssim:.4f} | {r.sec_per_mp:.2f} | {ratio} | {r.notes} |")


def denoise_bench(data, real, sigma, protocol, baseline, jpeg, clean, against, limit, settings, json_out) -> None:
    from restore.batch import find_images
    from restore.bench.denoise import PROTOCOLS, large_image_speed, model_denoise, real_pairs, run_bench, run_clean, run_jpeg, run_real
    from restore.tasks.base import Context

    if data is None and real is None:
        raise InputError("bench denoise needs --data DIR (clean photos) and/or --real DIR (NAME_real / NAME_mean pairs)")
    bad = [p for p in protocol if p not in PROTOCOLS] + [b for b in baseline if b not in ("nlm", "bm3d")]
    if bad:
        raise InputError(f"unknown protocol or baseline: {', '.join(bad)}")
    ctx = Context.create(settings)
    methods = {"restore (ours)": model_denoise(ctx)}
    if against:
        methods[f"restore ({against})"] = model_denoise(Context.create(settings.model_copy(update={"models_dir": against})))
    report: dict = {"rows": []}
    ours = lambda rows: {(r.protocol, r.sigma): r for r in rows if r.method == "restore (ours)"}  # noqa: E731
    say = lambda m: typer.echo(m, err=True)  # noqa: E731
    if real is not None:
        pairs = real_pairs(real)[:limit]
        rows, sweeps = run_real(pairs, methods, baseline, say)
        ref = ours(rows)
        _table(rows, lambda r: ref[(r.protocol, r.sigma)], f"denoise, real camera noise: {real} ({len(pairs)} pairs)", "noise")
        for name, swept in sweeps.items():
            typer.echo(f"\n{name} sweep on the first pairs: " + ", ".join(f"{k:g}: {v:.2f}" for k, v in swept.items()))
        report |= {"real": str(real), "pairs": len(pairs), "sweeps": {k: {str(a): b for a, b in v.items()} for k, v in sweeps.items()}}
        report["rows"] += [asdict(r) for r in rows]
    if data is not None:
        paths = find_images(data)[:limit]
        if not paths:
            raise RestoreError(f"no images in {data}")
        if jpeg:
            rows = run_jpeg(paths, jpeg, methods)
            ref = ours(rows)
            _table(rows, lambda r: ref[(r.protocol, r.sigma)], f"denoise, JPEG: {data} compressed ({len(paths)} photos)", "quality")
            report["rows"] += [asdict(r) for r in rows]
        if clean:
            rows = run_clean(paths, methods)
            ref = ours(rows)
            _table(rows, lambda r: ref[(r.protocol, r.sigma)], f"denoise, clean photos as they are: {data} ({len(paths)} photos)", "input")
            report["rows"] += [asdict(r) for r in rows]
        if not jpeg and not clean:
            rows = run_bench(paths, sigma, protocol, ctx, baseline, say, methods)
            ref = ours(rows)
            _table(rows, lambda r: ref[(r.protocol, r.sigma)], f"denoise, Gaussian noise: {data} ({len(paths)} photos; seeds fixed)", "noise")
            typer.echo(f"\n{PUBLISHED}")
            report["rows"] += [asdict(r) for r in rows]
    speeds = {name: large_image_speed(fn) for name, fn in methods.items()}
    typer.echo(f"\nOn a 2048x2048 photo (tiled, {settings.tile_size} px tiles): " + ", ".join(f"{n} {s:.2f} s/MP" for n, s in speeds.items()))
    report["large_image_sec_per_mp"] = speeds
    if json_out:
        json_out.write_text(json.dumps(report, indent=2))


def service_bench(threads: int, json_out: Path | None, jobs: int = 50) -> None:
    # The service bench drives the HTTP API, so it lives with it; imported only when asked for.
    from restore.api.bench import run_service_bench

    rows, memory = run_service_bench(jobs, threads)
    typer.echo(f"\nservice: one API and one worker (concurrency 1, {threads} ONNX Runtime threads) on 127.0.0.1, denoise, PNG in and out\n")
    typer.echo("| image | jobs | bare pipeline ms | submit p50 ms | submit p99 ms | end-to-end p50 ms | end-to-end p99 ms | overhead p50 ms | jobs/s |")
    typer.echo("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        typer.echo(f"| {r['size']} | {r['jobs']} | {r['bare_pipeline_ms']:.1f} | {r['submit_p50_ms']:.1f} | {r['submit_p99_ms']:.1f} | "
                   f"{r['e2e_p50_ms']:.1f} | {r['e2e_p99_ms']:.1f} | {r['overhead_p50_ms']:.1f} | {r['jobs_per_s']:.2f} |")
    typer.echo("\noverhead = end-to-end time (POST to downloaded result) - the pipeline time the worker measured")
    typer.echo("memory (RSS MB) before -> after: " + ", ".join(f"{k} {a:.0f} -> {b:.0f}" for k, (a, b) in memory.items()))
    if json_out:
        json_out.write_text(json.dumps({"rows": rows, "memory_mb": memory}, indent=2))


def dewatermark_bench(data: Path | None, limit: int | None, seed: int, fonts, words: str | None, logos: Path | None,
                      turned: bool, settings, json_out: Path | None) -> None:
    from restore.batch import find_images
    from restore.bench.dewatermark import run_bench
    from restore.tasks.base import Context

    if data is None:
        raise InputError("bench dewatermark needs --data DIR (a folder of clean images)")
    paths = find_images(data)[:limit]
    logo_files = find_images(logos) if logos else None
    if logos and not logo_files:
        raise InputError(f"no logo images in {logos}")
    rows = run_bench(paths, Context.create(settings), seed, fonts, tuple(w.strip() for w in words.split(",")) if words else None,
                     logo_files, turned)
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
    typer.echo("\nPublished, blind, on CLWD (a different watermark set): SplitNet and SLBR about 37-38 dB PSNR (Liang et al., SLBR, ACM MM 2021).")
    if json_out:
        json_out.write_text(json.dumps([asdict(r) for r in rows], indent=2))


def colorize_bench(data: Path | None, limit: int | None, seed: int, hints: list[int], temperature: float | None, settings,
                   json_out: Path | None) -> None:
    from restore.batch import find_images
    from restore.bench.colorize import SAMPLES, run_bench
    from restore.tasks.base import Context

    if data is None:
        raise InputError("bench colorize needs --data DIR (a folder of colour photos)")
    paths = find_images(data)[:limit]
    if not paths:
        raise RestoreError(f"no images in {data}")
    rows, extra = run_bench(paths, Context.create(settings), seed, temperature, hints)
    typer.echo(f"\ncolorize on gray versions of {data} ({rows[0].images} images; L kept, a = b = 0; seed {seed}; "
               f"annealed-mean temperature {extra['temperature']:g})\n")
    # Colourfulness two ways: the set's mean against the truth's mean (how published colourfulness is quoted,
    # whether a method washes colour out) and the mean per-photo gap (whether it tells vivid from dull).
    truth = extra["truth_colourfulness"]
    typer.echo("| method | PSNR dB | PSNR - default | SSIM | colourfulness | minus truth's | mean abs gap per photo | colour cast | s/MP |")
    typer.echo("|---|---|---|---|---|---|---|---|---|")
    ref = next(r for r in rows if r.method == "VAE, default sample")
    for r in rows:
        speed = "-" if r.sec_per_mp is None else f"{r.sec_per_mp:.2f}"
        typer.echo(f"| {r.method} | {r.psnr:.2f} | {r.psnr - ref.psnr:+.2f} | {r.ssim:.4f} | {r.colourfulness:.1f} | "
                   f"{r.colourfulness - truth:+.1f} | {r.colourfulness_gap:.1f} | {r.cast:.2f} | {speed} |")
    typer.echo(f"\nground truth colourfulness {truth:.1f}. Colour cast: the distance between the mean a, b of the result and of "
               f"the truth, per photo, averaged (set-wide bias a {extra['bias_ab'][0]:+.2f}, b {extra['bias_ab'][1]:+.2f}). "
               f"Diversity of {SAMPLES} samples (mean pairwise ab distance): {extra['diversity_ab']:.2f}; after removing each "
               f"sample's mean colour: {extra['diversity_local_ab']:.2f}. Best-of-{SAMPLES} s/MP is for all {SAMPLES} samples. "
               f"Hinted pixels that missed their colour by over 3 ab units: {extra['hint_misses']} of {extra['hinted_pixels']}.")
    typer.echo(PUBLISHED_COLORIZE)
    if json_out:
        json_out.write_text(json.dumps({"rows": [asdict(r) for r in rows], **extra}, indent=2))


def speed_bench(settings, data: Path | None, limit: int, megapixels: float, tune: bool, json_out: Path | None, record: bool = False,
                models: list[str] | None = None) -> None:
    from restore.bench.speed import TASKS, record_variants, run_speed, split_cores, tile_sizes

    unknown = [m for m in models or () if m not in TASKS]
    if unknown:
        raise InputError(f"--model takes {', '.join(TASKS)}, not {', '.join(unknown)}")
    if record and data is None:
        raise InputError("--record needs the quality figures: give --data DIR")
    rows, info = run_speed(settings, megapixels, data, limit, tasks=models or TASKS, progress=lambda m: typer.echo(m, err=True))
    typer.echo(f"\nspeed on a {info['megapixels']} MP photo through the command line's path, CPU: {info['cpu']} "
               f"({info['cpu_features']}), ONNX Runtime threads: {info['threads'] or 'all cores'}\n")
    typer.echo("| model | precision | s/MP | time / fp32 | time / OpenCV NLM | in the model | PSNR dB (own bench) | PSNR change |")
    typer.echo("|---|---|---|---|---|---|---|---|")
    for r in rows:
        quality = "-" if r.psnr is None else f"{r.psnr:.2f}"
        change = "-" if r.psnr_change is None else f"{r.psnr_change:+.3f}"
        typer.echo(f"| {r.task} | {r.precision} | {r.sec_per_mp:.2f} | {r.time_vs_fp32:.2f}x | {r.time_vs_nlm:.2f}x | "
                   f"{r.model_share:.1%} | {quality} | {change} |")
    typer.echo(f"\nOpenCV fastNlMeansDenoisingColored (h 10, 7/21 windows) on the same photo: {info['nlm_sec_per_mp']:.2f} s/MP. "
               "Own benches" + (f": the first {limit} photos of {data} (denoise: Gaussian sigma 25, 8-bit; dewatermark: the "
                                "seed-0 synthesized marks; colorize: the default sample)." if data else ": not run (give --data DIR).")
               + " In the model: the share of the time spent in ONNX Runtime (the rest is decoding, tiling, colour and encoding).")
    for r in rows:
        if r.int8_expected is not None:
            d = r.int8_detail
            typer.echo(f"{r.task} int8: {d['quantized_share_of_job']:.0%} of the fp32 time is in the convolutions it quantizes, "
                       f"which run at {d['int8_conv_time_vs_float']:.2f}x their float time on this CPU (ONNX Runtime's profile); "
                       f"the rest keeps its time, so about {r.int8_expected:.2f}x is what int8 can give; measured {r.time_vs_fp32:.2f}x.")
    report = {"rows": [asdict(r) for r in rows], **info}
    if record:
        typer.echo(f"recorded in {record_variants(rows, settings.models_dir)}")
    if tune:
        tiles = tile_sizes(settings)
        cores = split_cores(settings.models_dir)
        typer.echo("\ndenoise by tile size (s/MP): " + ", ".join(f"{k} px {v:.2f}" for k, v in tiles.items()))
        typer.echo("denoise photos/s on every core (1 MP each): " + ", ".join(f"{k}: {v:.2f}" for k, v in cores.items()))
        report |= {"tile_sizes": tiles, "split_cores": cores}
    if json_out:
        json_out.write_text(json.dumps(report, indent=2))
