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
    model_share: float  # of the time, the share spent in ONNX Runtime (the rest: decoding, tiles, colour, encoding)
    int8_expected: float | None = None  # int8 rows: the time / fp32 expected from its convolutions' measured speed
    int8_detail: dict | None = None  # int8 rows: what int8_expected comes from (see int8_convolutions)


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


def cpu_features() -> str:
    """The vector instructions int8 inference depends on, as /proc/cpuinfo names them."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    have = [f for f in wanted if f in flags]
    return ", ".join(have) + ("" if {"avx512_vnni", "avx_vnni"} & set(have) else " (no VNNI)")


def seconds(data: bytes, task: str, ctx: Context, repeats: int = 1) -> tuple[float, float]:
    """(seconds, of them in ONNX Runtime) for the best of `repeats` runs of the command line's path."""
    request = plan(task, {"format": "png"} if task != "colorize" else {})
    process(data[:], request, ctx)  # warm-up: the session's creation is not per-image work
    session = ctx.session(task)
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        t0, m0 = time.perf_counter(), session.seconds
        process(data, request, ctx)
        best = min(best, (time.perf_counter() - t0, session.seconds - m0))
    return best


def op_seconds(path: Path, side: int, threads: int) -> dict[str, float]:
    """Seconds per run by operator type (ONNX Runtime's profiler) on one input of side x side pixels."""
    import json
    import tempfile
    from collections import Counter

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {}
        for i, spec in enumerate(session.get_inputs()):
            # colorize's latent z is one vector per photo: (1, C, 1, 1) whatever its declared axes
            spatial = 1 if spec.name == "z" else side
            shape = [1, *(d if isinstance(d, int) else spatial for d in spec.shape[1:])]
            feed[spec.name] = np.random.default_rng(0).random(shape, np.float32) if i == 0 else np.zeros(shape, np.float32)
        for _ in range(3):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    fastest: dict[str, tuple[str, float]] = {}  # per node, its fastest run: the first pays for allocations
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            node, seconds = event["name"], event["dur"] / 1e6
            if node not in fastest or seconds < fastest[node][1]:
                fastest[node] = (event["args"]["op_name"], seconds)
    spent: Counter = Counter()
    for op, seconds in fastest.values():
        spent[op] += seconds
    return dict(spent)


def int8_convolutions(fp32: Path, int8: Path, side: int, threads: int) -> dict[str, float]:
    """How far int8 can take a model on this CPU: the share of the fp32 model's time spent in the
    convolutions the int8 variant quantizes, and the time those take in int8 against float (the float
    convolutions the variant keeps, at the image's edges and the upsampling, cost the same in both)."""
    plain, quantized = op_seconds(fp32, side, threads), op_seconds(int8, side, threads)
    is_float_conv = lambda op: "Conv" in op and not op.startswith("QLinear")  # noqa: E731
    float_conv = sum(t for op, t in plain.items() if is_float_conv(op))
    kept_float = sum(t for op, t in quantized.items() if is_float_conv(op))
    int8_conv = sum(t for op, t in quantized.items() if op.startswith("QLinearConv"))
    converted = max(float_conv - kept_float, 1e-9)
    return {"quantized_share_of_model": converted / sum(plain.values()), "int8_conv_time_vs_float": int8_conv / converted}


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
                total, in_model = seconds(data, task, ctx)
            except ModelError as e:
                progress(f"{task} {precision}: {e}")
                continue
            spent = total / mp
            score = quality(task, ctx, data_dir, limit)
            if precision == "fp32":
                fp32_time, fp32_psnr, fp32_share = spent, score, in_model / total
            row = SpeedRow(task, precision, spent, spent / fp32_time, spent / nlm, score,
                           None if score is None or fp32_psnr is None else score - fp32_psnr, in_model / total)
            if precision == "int8":
                side = int(model.input.get("working_size", settings.tile_size))
                detail = int8_convolutions(model.path, model.variant("int8").path, side, settings.threads)
                share = fp32_share * detail["quantized_share_of_model"]
                row.int8_expected = 1 - share * (1 - detail["int8_conv_time_vs_float"])
                row.int8_detail = {**detail, "quantized_share_of_job": share}
            rows.append(row)
            progress(f"{task} {precision}: {spent:.2f} s/MP")
    return rows, {"cpu": cpu_name(), "cpu_features": cpu_features(), "megapixels": round(mp, 2), "nlm_sec_per_mp": nlm,
                  "threads": settings.threads}


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
    return {size: seconds(data, "denoise", Context.create(settings.model_copy(update={"tile_size": size, "device": "cpu"})))[0] / mp
            for size in sizes}


# An int8 variant is what auto runs on CPU when it loses no more than QUALITY_KEPT_DB on its model's bench
# and saves time: at most TIME_SAVED of fp32's time (where the model is a small part of a job, int8 saves
# nothing and only adds its rounding).
QUALITY_KEPT_DB = 0.05
TIME_SAVED = 0.9


def record_variants(rows: list[SpeedRow], models_dir: Path | None) -> Path:
    """Write each variant's measured PSNR change and time ratio into the manifest; an int8 variant within
    QUALITY_KEPT_DB of fp32 and at most TIME_SAVED of its time is marked auto (the engine's default on CPU)."""
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
            variant["auto"] = row.psnr_change >= -QUALITY_KEPT_DB and row.time_vs_fp32 <= TIME_SAVED
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
