"""`restore bench colorize`: the VAE's default colouring, with 0 or more colour hints taken from the truth,
its best of 8, the diversity of its samples, next to the gray input (ab = 0) and the deterministic
autoencoder of the same size trained the same way.

Inputs are the gray versions of clean colour photos: their own L with a = b = 0, saved as 8-bit gray,
as a scanned black-and-white photo would be. Scores are on the 8-bit RGB outputs. Hint points are
seeded pixels of the photo, each hinted with the photo's own colour there, as a user who remembers a
colour would give it. A hinted pixel must come back with the hint's a and b at the photo's lightness
(within 3 ab units, the 8-bit rounding included): the bench counts the ones that do not.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restore.bench.metrics import psnr, ssim
from restore.color import colourfulness, gray_of, lab_to_rgb_keep_lightness, rgb_to_lab
from restore.engine import Session
from restore.errors import ModelError
from restore.guidance import Hints, hints_at
from restore.io import read_image, to_float
from restore.models import model_for_task
from restore.tasks import colorize
from restore.tasks.base import Context

SAMPLES = 8
BASELINE = "colorize-baseline"
HINT_TOLERANCE = 3.0  # ab units


@dataclass
class ColorizeRow:
    method: str
    psnr: float
    ssim: float
    colourfulness: float
    colourfulness_gap: float  # mean over images of |colourfulness - the truth's|
    cast: float  # mean over images of the distance between the mean ab of the result and of the truth
    sec_per_mp: float | None
    images: int


def mean_ab(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_lab(rgb)[..., 1:].reshape(-1, 2).mean(axis=0)


def diversity(outputs: list[np.ndarray], local: bool = False) -> float:
    """Mean over sample pairs of the mean per-pixel ab distance (Lab units) between them; local: after
    removing each sample's mean colour, so a sample that only tints the whole photo counts for nothing."""
    ab = [rgb_to_lab(o)[..., 1:] for o in outputs]
    if local:
        ab = [a - a.reshape(-1, 2).mean(axis=0) for a in ab]
    return float(np.mean([np.linalg.norm(a - b, axis=-1).mean() for a, b in itertools.combinations(ab, 2)]))


def truth_hints(clean: np.ndarray, count: int, seed: int) -> Hints:
    """`count` seeded pixels of the photo, each hinted with the photo's own colour there."""
    h, w = clean.shape[:2]
    rng = np.random.default_rng(seed)
    flat = rng.choice(h * w, size=min(count, h * w), replace=False)
    rows, cols = np.divmod(flat, w)
    colours = np.round(clean[rows, cols] * 255).astype(int)
    return hints_at([(int(x), int(y), "#%02x%02x%02x" % tuple(c)) for y, x, c in zip(rows, cols, colours)], (w, h))


def hint_misses(out: np.ndarray, gray_L: np.ndarray, hints: Hints) -> int:
    """How many hinted pixels came back more than HINT_TOLERANCE ab units from the hint's colour at the
    photo's own lightness (out of gamut, that colour with the least chroma loss that fits)."""
    if not len(hints):
        return 0
    L = gray_L[hints.rows, hints.cols]
    wanted = rgb_to_lab(lab_to_rgb_keep_lightness(np.concatenate([L[:, None], hints.ab], axis=1)))[:, 1:]
    got = rgb_to_lab(out[hints.rows, hints.cols])[:, 1:]
    return int((np.linalg.norm(got - wanted, axis=1) > HINT_TOLERANCE).sum())


def run_bench(paths: list[Path], ctx: Context, seed: int = 0, temperature: float | None = None,
              hint_counts: list[int] = (0,)) -> tuple[list[ColorizeRow], dict]:
    vae = ctx.session(colorize.NAME)
    ae: Session | None
    try:
        ae = ctx.engine.session(model_for_task(BASELINE, ctx.settings.models_dir))
    except ModelError:  # without the baseline the table has a row less, and says so
        ae = None
    hinted = "hint" in vae.model.input
    default = "VAE, default sample"
    counts = [k for k in hint_counts if k and hinted]
    names = ["gray input (ab = 0)", "deterministic autoencoder", default, *(f"VAE, {k} hint points" for k in counts),
             f"VAE, best of {SAMPLES}"]
    acc = {m: {"psnr": [], "ssim": [], "c": [], "gap": [], "cast": [], "bias": [], "sec": 0.0} for m in names}
    truth_c, spread, local, pixels, misses, hinted_pixels = [], [], [], 0, 0, 0
    for i, path in enumerate(paths):
        clean = to_float(read_image(path))
        if clean.shape[2] != 3:
            continue  # a gray photo has no colours to compare with
        gray = np.round(gray_of(clean).mean(axis=2, keepdims=True) * 255).astype(np.uint8)
        L = rgb_to_lab(np.repeat(gray, 3, axis=2).astype(np.float32) / 255)[..., 0]
        pixels += gray.shape[0] * gray.shape[1]
        truth_c.append(colourfulness(clean))
        outs: dict[str, np.ndarray] = {names[0]: np.repeat(gray, 3, axis=2)}

        def timed(name, fn):
            t0 = time.perf_counter()
            result = fn()
            acc[name]["sec"] += time.perf_counter() - t0
            return result

        if ae is not None:
            outs[names[1]] = timed(names[1], lambda: colorize.colorize_image(ae, gray, 1, 0, temperature)[0])
        outs[default] = timed(default, lambda: colorize.colorize_image(vae, gray, 1, seed + i, temperature)[0])
        for k in counts:
            given = truth_hints(clean, k, seed * 1000 + i)
            name = f"VAE, {k} hint points"
            outs[name] = timed(name, lambda: colorize.colorize_image(vae, gray, 1, seed + i, temperature, given)[0])
            misses += hint_misses(outs[name].astype(np.float32) / 255, L, given)
            hinted_pixels += len(given)
        best = f"VAE, best of {SAMPLES}"
        samples = [s.astype(np.float32) / 255 for s in timed(best, lambda: colorize.colorize_image(vae, gray, SAMPLES, seed + i, temperature))]
        outs[best] = np.round(samples[int(np.argmax([psnr(s, clean) for s in samples]))] * 255).astype(np.uint8)
        spread.append(diversity(samples))
        local.append(diversity(samples, local=True))
        truth_ab = mean_ab(clean)
        for method, out in outs.items():
            out = out.astype(np.float32) / 255
            a = acc[method]
            a["psnr"].append(psnr(out, clean))
            a["ssim"].append(ssim(out, clean))
            a["c"].append(colourfulness(out))
            a["gap"].append(abs(a["c"][-1] - truth_c[-1]))
            bias = mean_ab(out) - truth_ab
            a["cast"].append(float(np.linalg.norm(bias)))
            a["bias"].append(bias)
    rows = [
        ColorizeRow(m, float(np.mean(a["psnr"])), float(np.mean(a["ssim"])), float(np.mean(a["c"])), float(np.mean(a["gap"])),
                    float(np.mean(a["cast"])), a["sec"] / (pixels / 1e6) if j else None, len(a["psnr"]))
        for j, (m, a) in enumerate(acc.items()) if a["psnr"]
    ]
    extra = {"truth_colourfulness": float(np.mean(truth_c)), "diversity_ab": float(np.mean(spread)),
             "diversity_local_ab": float(np.mean(local)), "bias_ab": [float(v) for v in np.mean(acc[default]["bias"], axis=0)],
             "hint_misses": misses, "hinted_pixels": hinted_pixels,
             "temperature": temperature or float(vae.model.output["logits"]["temperature"]),
             "models": [vae.model.name] + ([ae.model.name] if ae else [])}
    return rows, extra
