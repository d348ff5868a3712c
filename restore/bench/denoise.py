"""`restore bench denoise`: the model next to OpenCV non-local means and BM3D on the same inputs.

Four tables, each from its own flags:
- Gaussian noise (--data DIR --sigma ...): protocols `8bit` add the noise, clip and round to 8 bits
  (users' files); `paper` keeps float, unclipped noise and feeds it to the model directly (the published
  tables). Non-local means only takes 8-bit input, so under `paper` it gets the clipped, rounded version.
- Real camera noise (--real DIR): NAME_real / NAME_mean pairs (one shot, and the mean of many shots of
  the same still scene). CBM3D and non-local means cannot be told the noise: each gets the single
  setting that is best for the set, from a sweep on the first images (reported).
- JPEG (--data DIR --jpeg Q ...): the clean photos compressed at each quality, the compressed input
  against the restored one.
- Clean photos (--data DIR --clean): what the model does to a photo with no noise (it should return it
  nearly untouched).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from restore.batch import find_images
from restore.bench.metrics import psnr, ssim
from restore.errors import InputError
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


def real_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(noisy, ground truth) for every NAME_real.EXT / NAME_mean.EXT pair in folder (the layout of the
    PolyU real-noise set: one shot and the mean of many shots of the same still scene), by name."""
    found = {}
    for path in find_images(Path(folder)):
        stem, _, role = path.stem.rpartition("_")
        if role.lower() in ("real", "mean"):
            found.setdefault(stem, {})[role.lower()] = path
    pairs = [(p["real"], p["mean"]) for _, p in sorted(found.items()) if len(p) == 2]
    if not pairs:
        raise InputError(f"no NAME_real / NAME_mean image pairs in {folder}")
    return pairs


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


def model_denoise(ctx: Context) -> Callable[..., np.ndarray]:
    """The model as served (blind: a noise level given to it is ignored), on a float image."""
    def run(noisy: np.ndarray, *_) -> np.ndarray:
        (out,), _ = denoise.run(noisy.astype(np.float32), denoise.DenoiseOptions(), ctx, {})
        return out

    return run


def large_image_speed(fn: Callable[..., np.ndarray], side: int = 2048) -> float:
    """Seconds per megapixel of fn (see model_denoise) on one side x side photo-like image: the tiled
    path a big photo takes."""
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(0.5, 0.2, (side // 8, side // 8, 3)), 0, 1).astype(np.float32)
    img = cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)
    noisy = np.clip(img + rng.normal(0, 25 / 255, img.shape).astype(np.float32), 0, 1)
    fn(noisy[:256, :256])  # warm-up: session creation is not per-image work
    t0 = time.perf_counter()
    fn(noisy)
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
    progress: Callable[[str], None] = lambda msg: None, methods: dict[str, Callable] | None = None,
) -> list[Row]:
    """Gaussian noise at each sigma and protocol: the noisy input, each method (default: the context's
    model as "restore (ours)"), and the baselines (told the true sigma; non-local means its best h)."""
    cleans = [to_float(read_image(p)) for p in paths]
    methods = methods or {"restore (ours)": model_denoise(ctx)}
    rows = []
    for protocol in protocols:
        for sigma in sigmas:
            noisy = [noisy_version(c, sigma, protocol, seed=1000 * int(sigma) + i) for i, c in enumerate(cleans)]
            results = {name: Scores() for name in [*methods, "noisy input", *baselines]}
            for clean, z in zip(cleans, noisy):
                _score(results["noisy input"], lambda x: x, z, clean, protocol)
                for name, fn in methods.items():
                    _score(results[name], fn, z, clean, protocol)
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


BM3D_SIGMAS = (4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0)  # the sweep for real noise (0-255 scale)
NLM_H = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
SWEEP_IMAGES = 8


def _scored(fn, noisy: list[np.ndarray], truth: list[np.ndarray], name: str, notes: str = "", protocol: str = "real",
            sigma: float = 0.0, lowest: bool = False) -> Row:
    """fn over the images, scored as 8-bit results against the truth."""
    scores = Scores()
    for z, clean in zip(noisy, truth):
        _score(scores, fn, z, clean, "8bit")
    if lowest:
        notes = f"lowest {min(scores.psnr):.2f}"
    return Row(protocol, sigma, name, float(np.mean(scores.psnr)), float(np.mean(scores.ssim)),
               scores.seconds / (scores.pixels / 1e6) if name != "noisy input" else 0.0, len(scores.psnr), notes)


def _best(values, score) -> tuple[float, dict]:
    """The value with the highest score, and every value's score (the sweep, for the report)."""
    swept = {v: score(v) for v in values}
    return max(swept, key=swept.get), swept


def run_real(pairs: list[tuple], methods: dict[str, Callable], baselines: list[str],
             progress: Callable[[str], None] = lambda msg: None) -> tuple[list[Row], dict]:
    """Real-noise pairs through each method (name -> fn(noisy) -> denoised) and the baselines, each told
    its single best setting for the set (swept on the first SWEEP_IMAGES pairs). Rows, and the sweeps."""
    noisy = [to_float(read_image(n)) for n, _ in pairs]
    truth = [to_float(read_image(m)) for _, m in pairs]
    rows = [_scored(lambda x: x, noisy, truth, "noisy input")]
    for name, fn in methods.items():
        rows.append(_scored(fn, noisy, truth, name))
        progress(f"done {name}")
    k = min(SWEEP_IMAGES, len(pairs))
    sweeps = {}
    if "nlm" in baselines:
        h, sweeps["nlm_h"] = _best(NLM_H, lambda h: np.mean([psnr(nlm(noisy[i], h, 1.0), truth[i]) for i in range(k)]))
        rows.append(_scored(lambda x: nlm(x, h, 1.0), noisy, truth, "nlm", f"best h={h:g} (swept on the first {k})"))
        progress("done nlm")
    if "bm3d" in baselines:
        sigma, sweeps["bm3d_sigma"] = _best(BM3D_SIGMAS, lambda s: np.mean([psnr(bm3d_denoise(noisy[i], s), truth[i]) for i in range(k)]))
        progress(f"bm3d: best sigma {sigma:g}")
        rows.append(_scored(lambda x: bm3d_denoise(x, sigma), noisy, truth, "bm3d", f"best sigma={sigma:g} (swept on the first {k})"))
    return rows, sweeps


def run_jpeg(paths: list, qualities: list[int], methods: dict[str, Callable]) -> list[Row]:
    """Clean photos compressed at each JPEG quality (OpenCV, 4:2:0), against each method's restoration."""
    from restore.training.degrade import jpeg  # a round trip through libjpeg; numpy and OpenCV only

    cleans = [to_float(read_image(p)) for p in paths]
    rows = []
    for q in qualities:
        compressed = [jpeg(c, q) for c in cleans]
        rows.append(_scored(lambda x: x, compressed, cleans, "compressed input", protocol="jpeg", sigma=q))
        rows += [_scored(fn, compressed, cleans, name, protocol="jpeg", sigma=q) for name, fn in methods.items()]
    return rows


def run_clean(paths: list, methods: dict[str, Callable]) -> list[Row]:
    """Clean photos through each method: how much of a noiseless photo it changes (PSNR against itself;
    the notes give the lowest photo's)."""
    cleans = [to_float(read_image(p)) for p in paths]
    return [_scored(fn, cleans, cleans, name, protocol="clean", lowest=True) for name, fn in methods.items()]
