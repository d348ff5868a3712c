"""`restore bench speed`: seconds per megapixel of each model in each precision on one photo-like image
through the path the command line takes (decode, tiles, encode), the ratio to fp32 in the same run, the
quality each precision keeps on the model's own benchmark, and OpenCV's non-local means on the same
image as a yardstick that moves with the machine. Also ONNX Runtime's settings that matter: tile size,
and how a worker's cores are best split (one job with every thread, or one job per core).
"""
from __future__ import annotations

import multiprocessing
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from restore.errors import ModelError
from restore.io import Picture, encode_image, read_image
from restore.models import model_for_task
from restore.pipeline import plan, process
from restore.settings import Settings
from restore.tasks.base import Context

TASKS = ("denoise", "dewatermark", "colorize")
PRECISIONS = ("fp32", "int8", "fp16")


@dataclass
class SpeedRow:
    task: str
    precision: str
    sec_per_mp: float
    time_vs_fp32: float
    time_vs_nlm: float
    psnr: float | None  # on the model's own benchmark, in this precision
    psnr_change: float | None  # against fp32


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def photo_like(megapixels: float, seed: int = 0) -> bytes:
    """A PNG of a smooth random scene with Gaussian noise, about `megapixels` in 4:3."""
    height = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    width = int(height * 4 / 3)
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((height // 32, width // 32, 3)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    noisy = np.clip(base + rng.normal(0, 15 / 255, base.shape), 0, 1)
    return encode_image(Picture(np.round(noisy * 255).astype(np.uint8), None, "PNG"), "PNG")


def seconds(data: bytes, task: str, ctx: Context, repeats: int = 1) -> float:
    request = plan(task, {"format": "png"} if task != "colorize" else {})
    process(data[:], request, ctx)  # warm-up: the session's creation is not per-image work
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        process(data, request, ctx)
        best = min(best, time.perf_counter() - t0)
    return best


def nlm_seconds(data: bytes) -> float:
    u8 = read_image(data).color
    t0 = time.perf_counter()
    cv2.fastNlMeansDenoisingColored(u8, None, 10, 10, 7, 21)
    return time.perf_counter() - t0


def quality(task: str, ctx: Context, data_dir: Path | None, limit: int) -> float | None:
    """The model's own benchmark in this context's precision: denoise, CBSD68-like photos at sigma 25
    (8-bit); dewatermark, the fixed synthesized set; colorize, the default sample against the truth."""
    if data_dir is None:
        return None
    from restore.batch import find_images

    paths = find_images(data_dir)[:limit]
    if task == "denoise":
        from restore.bench.denoise import run_bench

        rows = run_bench(paths, [25], ["8bit"], ctx, [])
        return next(r.psnr for r in rows if r.method == "restore (ours)")
    if task == "dewatermark":
        from restore.bench.dewatermark import run_bench

        return next(r.psnr for r in run_bench(paths, ctx) if r.method == "restore (ours)")
    from restore.bench.colorize import run_bench

    rows, _ = run_bench(paths, ctx)
    return next(r.psnr for r in rows if r.method == "VAE, default sample")


def run_speed(settings: Settings, megapixels: float = 12.0, data_dir: Path | None = None, limit: int = 8,
              tasks=TASKS, progress=lambda m: None) -> tuple[list[SpeedRow], dict]:
    data = photo_like(megapixels)
    mp = read_image(data).size[0] * read_image(data).size[1] / 1e6
    nlm = nlm_seconds(data) / mp
    rows = []
    for task in tasks:
        model = model_for_task(task, settings.models_dir)
        fp32_time = fp32_psnr = None
        for precision in PRECISIONS:
            if precision != "fp32" and precision not in model.variants:
                continue
            ctx = Context.create(settings.model_copy(update={"precision": precision, "device": "cpu"}))
            try:
                spent = seconds(data, task, ctx) / mp
            except ModelError as e:
                progress(f"{task} {precision}: {e}")
                continue
            score = quality(task, ctx, data_dir, limit)
            if precision == "fp32":
                fp32_time, fp32_psnr = spent, score
            rows.append(SpeedRow(task, precision, spent, spent / fp32_time, spent / nlm, score,
                                 None if score is None or fp32_psnr is None else score - fp32_psnr))
            progress(f"{task} {precision}: {spent:.2f} s/MP")
    return rows, {"cpu": cpu_name(), "megapixels": round(mp, 2), "nlm_sec_per_mp": nlm, "threads": settings.threads}


def _job_rate(args) -> int:
    models_dir, threads, count, deadline = args
    ctx = Context.create(Settings(_env_file=None, models_dir=models_dir, threads=threads, device="cpu"))
    data = photo_like(1.0, seed=1)
    done = 0
    process(data, plan("denoise"), ctx)
    start = time.perf_counter()
    while done < count and time.perf_counter() - start < deadline:
        process(data, plan("denoise"), ctx)
        done += 1
    return done


def split_cores(models_dir: Path | None, photos: int = 20) -> dict[str, float]:
    """Denoise photos per second (1 MP each, `photos` of them) on every core: one job at a time with all
    threads, against one process per core with one thread each (a worker's --concurrency)."""
    cores = multiprocessing.cpu_count()
    t0 = time.perf_counter()
    _job_rate((models_dir, 0, photos, 600))
    one = photos / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        done = sum(pool.map(_job_rate, [(models_dir, 1, -(-photos // cores), 600)] * cores))
    many = done / (time.perf_counter() - t0)
    return {f"1 job x {cores} threads": one, f"{cores} jobs x 1 thread": many}


def tile_sizes(settings: Settings, sizes=(256, 512, 768, 1024), megapixels: float = 4.0) -> dict[int, float]:
    """Denoise s/MP by tile size."""
    data = photo_like(megapixels, seed=2)
    mp = read_image(data).size[0] * read_image(data).size[1] / 1e6
    return {size: seconds(data, "denoise", Context.create(settings.model_copy(update={"tile_size": size, "device": "cpu"}))) / mp
            for size in sizes}


QUALITY_KEPT_DB = 0.05  # an int8 variant that loses no more than this on its model's bench is used by auto on CPU


def record_variants(rows: list[SpeedRow], models_dir: Path | None) -> Path:
    """Write each variant's measured PSNR change and time ratio into the manifest; an int8 variant within
    QUALITY_KEPT_DB of fp32 is marked auto (the engine's default on CPU)."""
    import json

    from restore.models import MANIFEST, default_models_dir

    path = Path(models_dir or default_models_dir()) / MANIFEST
    manifest = json.loads(path.read_text())
    for row in rows:
        if row.precision == "fp32" or row.psnr_change is None:
            continue
        entry = next(m for m in manifest["models"] if m["task"] == row.task)
        variant = entry["variants"][row.precision]
        variant.update(psnr_change_db=round(row.psnr_change, 3), time_vs_fp32=round(row.time_vs_fp32, 2))
        if row.precision == "int8":
            variant["auto"] = row.psnr_change >= -QUALITY_KEPT_DB
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
