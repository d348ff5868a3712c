"""`restore bench colorize`: the VAE's default colouring, its best of 8, and their diversity, next to
the gray input (ab = 0) and the deterministic autoencoder of the same size trained the same way.

Inputs are the gray versions of clean colour photos: their own L with a = b = 0, saved as 8-bit gray,
as a scanned black-and-white photo would be. Scores are on the 8-bit RGB outputs.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restore.bench.metrics import psnr, ssim
from restore.color import colourfulness, gray_of, rgb_to_lab
from restore.engine import Session
from restore.io import read_image, to_float
from restore.errors import ModelError
from restore.models import model_for_task
from restore.tasks import colorize
from restore.tasks.base import Context

SAMPLES = 8
BASELINE = "colorize-baseline"


@dataclass
class ColorizeRow:
    method: str
    psnr: float
    ssim: float
    colourfulness: float
    colourfulness_gap: float  # mean over images of |colourfulness - the truth's|
    sec_per_mp: float | None
    images: int


def diversity(outputs: list[np.ndarray]) -> float:
    """Mean over sample pairs of the mean per-pixel ab distance (Lab units) between them."""
    ab = [rgb_to_lab(o)[..., 1:] for o in outputs]
    return float(np.mean([np.linalg.norm(a - b, axis=-1).mean() for a, b in itertools.combinations(ab, 2)]))


def run_bench(paths: list[Path], ctx: Context, seed: int = 0, temperature: float | None = None) -> tuple[list[ColorizeRow], dict]:
    vae = ctx.session(colorize.NAME)
    ae: Session | None
    try:
        ae = ctx.engine.session(model_for_task(BASELINE, ctx.settings.models_dir))
    except ModelError:  # without the baseline the table has a row less, and says so
        ae = None
    names = ["gray input (ab = 0)", "deterministic autoencoder", "VAE, default sample", f"VAE, best of {SAMPLES}"]
    acc = {m: {"psnr": [], "ssim": [], "c": [], "gap": [], "sec": 0.0} for m in names}
    truth_c, spread, pixels = [], [], 0
    for i, path in enumerate(paths):
        clean = to_float(read_image(path))
        if clean.shape[2] != 3:
            continue  # a gray photo has no colours to compare with
        gray = np.round(gray_of(clean).mean(axis=2, keepdims=True) * 255).astype(np.uint8)
        pixels += gray.shape[0] * gray.shape[1]
        truth_c.append(colourfulness(clean))
        outs: dict[str, np.ndarray] = {names[0]: np.repeat(gray, 3, axis=2)}
        if ae is not None:
            t0 = time.perf_counter()
            outs[names[1]] = colorize.colorize_image(ae, gray, 1, 0, temperature)[0]
            acc[names[1]]["sec"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        outs[names[2]] = colorize.colorize_image(vae, gray, 1, seed + i, temperature)[0]
        acc[names[2]]["sec"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        samples = [s.astype(np.float32) / 255 for s in colorize.colorize_image(vae, gray, SAMPLES, seed + i, temperature)]
        acc[names[3]]["sec"] += time.perf_counter() - t0
        scores = [psnr(s, clean) for s in samples]
        outs[names[3]] = np.round(samples[int(np.argmax(scores))] * 255).astype(np.uint8)
        spread.append(diversity(samples))
        for method, out in outs.items():
            out = out.astype(np.float32) / 255
            a = acc[method]
            a["psnr"].append(psnr(out, clean))
            a["ssim"].append(ssim(out, clean))
            a["c"].append(colourfulness(out))
            a["gap"].append(abs(a["c"][-1] - truth_c[-1]))
    rows = [
        ColorizeRow(m, float(np.mean(a["psnr"])), float(np.mean(a["ssim"])), float(np.mean(a["c"])), float(np.mean(a["gap"])),
                    a["sec"] / (pixels / 1e6) if i else None, len(a["psnr"]))
        for i, (m, a) in enumerate(acc.items()) if a["psnr"]
    ]
    extra = {"truth_colourfulness": float(np.mean(truth_c)), "diversity_ab": float(np.mean(spread)),
             "temperature": temperature or float(vae.model.output["logits"]["temperature"]),
             "models": [vae.model.name] + ([ae.model.name] if ae else [])}
    return rows, extra
