"""`restore bench denoise`: the model next to OpenCV non-local means and BM3D on the same noisy inputs.

Protocols: `8bit` adds the noise, clips and rounds to 8 bits (users' files); `paper` keeps float,
unclipped noise and feeds it to the model directly (the published tables). Non-local means only takes
8-bit input, so under `paper` it gets the clipped, rounded version: said in the table's notes.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from restore.bench.metrics import psnr, ssim
from restore.io import read_image, to_float
from restore.tasks import denoise
from restore.tasks.base import Context

PROTOCOLS = ("8bit", "paper")
NLM_GRID = (0.3, 0.4, 0.5, 0.6, 0.8, 1.0)  # h as a multiple of sigma, tuned per sigma, best kept


@dataclass
class Row:
    protocol: str
    sigma: float
    method: str
    psnr: float
    ssim: float
    sec_per_mp: float
    images: int
    notes: str = ""


@dataclass
class Scores:
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    seconds: float = 0.0
    pixels: int = 0


def noisy_version(clean: np.ndarray, sigma: float, protocol: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = clean + rng.standard_normal(clean.shape).astype(np.float32) * (sigma / 255)
    return np.round(np.clip(noisy, 0, 1) * 255) / 255 if protocol == "8bit" else noisy


def to_u8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def nlm(noisy: np.ndarray, sigma: float, h_ratio: float) -> np.ndarray:
    u8 = to_u8(noisy)
    h = h_ratio * sigma
    if u8.shape[2] == 1:
        return cv2.fastNlMeansDenoising(u8[..., 0], None, h, 7, 21)[..., None] / 255.0
    return cv2.fastNlMeansDenoisingColored(u8, None, h, h, 7, 21) / 255.0


def bm3d_denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d  # the bench extra: optional, slow, never needed for serving

    if noisy.shape[2] == 1:
        return bm3d.bm3d(noisy[..., 0], sigma_psd=sigma / 255)[..., None]
    return bm3d.bm3d_rgb(noisy, sigma_psd=sigma / 255)


def model_denoise(ctx: Context) -> Callable[[np.ndarray, float], np.ndarray]:
    def run(noisy: np.ndarray, sigma: float) -> np.ndarray:
        out, _ = denoise.run(noisy.astype(np.float32), denoise.DenoiseOptions(), ctx)
        return out

    return run


def large_image_speed(ctx: Context, side: int = 2048) -> float:
    """Seconds per megapixel on one side x side photo-like image: the tiled path a big photo takes."""
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(0.5, 0.2, (side // 8, side // 8, 3)), 0, 1).astype(np.float32)
    img = cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)
    noisy = np.clip(img + rng.normal(0, 25 / 255, img.shape).astype(np.float32), 0, 1)
    model_denoise(ctx)(noisy[:256, :256], 25)  # warm-up: session creation is not per-image work
    t0 = time.perf_counter()
    model_denoise(ctx)(noisy, 25)
    return (time.perf_counter() - t0) / (side * side / 1e6)


def _score(scores: Scores, fn, noisy, clean, protocol, *args):
    t0 = time.perf_counter()
    out = fn(noisy, *args)
    scores.seconds += time.perf_counter() - t0
    scores.pixels += clean.shape[0] * clean.shape[1]
    out = to_u8(out) / 255.0 if protocol == "8bit" else np.clip(out, 0, 1)  # 8bit: what a user's file holds
    scores.psnr.append(psnr(out, clean))
    scores.ssim.append(ssim(out, clean))


def run_bench(
    paths: list, sigmas: list[float], protocols: list[str], ctx: Context, baselines: list[str],
    progress: Callable[[str], None] = lambda msg: None,
) -> list[Row]:
    cleans = [to_float(read_image(p)) for p in paths]
    methods: dict[str, Callable] = {"restore (ours)": model_denoise(ctx)}
    rows = []
    for protocol in protocols:
        for sigma in sigmas:
            noisy = [noisy_version(c, sigma, protocol, seed=1000 * int(sigma) + i) for i, c in enumerate(cleans)]
            results = {name: Scores() for name in ["restore (ours)", "noisy input", *baselines]}
            for clean, z in zip(cleans, noisy):
                _score(results["noisy input"], lambda x: x, z, clean, protocol)
                _score(results["restore (ours)"], methods["restore (ours)"], z, clean, protocol, sigma)
            notes = {}
            if "nlm" in baselines:
                tune = range(min(4, len(cleans)))
                best = max(NLM_GRID, key=lambda r: np.mean([psnr(nlm(noisy[i], sigma, r), cleans[i]) for i in tune]))
                for clean, z in zip(cleans, noisy):
                    _score(results["nlm"], nlm, z, clean, protocol, sigma, best)
                notes["nlm"] = f"h={best:g}*sigma" + (", 8-bit input" if protocol == "paper" else "")
            if "bm3d" in baselines:
                for clean, z in zip(cleans, noisy):
                    _score(results["bm3d"], bm3d_denoise, z, clean, protocol, sigma)
                    progress(f"bm3d {protocol} sigma {sigma:g}: {len(results['bm3d'].psnr)}/{len(cleans)}")
                notes["bm3d"] = "true sigma given"
            for name, s in results.items():
                rows.append(Row(protocol, sigma, name, float(np.mean(s.psnr)), float(np.mean(s.ssim)),
                                s.seconds / (s.pixels / 1e6) if name != "noisy input" else 0.0, len(s.psnr), notes.get(name, "")))
            progress(f"done {protocol} sigma {sigma:g}")
    return rows
