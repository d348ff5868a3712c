"""`restore bench dewatermark`: the model next to cv2.inpaint given the TRUE mask, on seeded watermarks.

The watermarks are synthesized from clean photos with a fixed seed (the same set `restore
synth-watermarks` writes), saved to 8 bits as watermarked files are. The model sees only the
watermarked photo; the inpainting baselines are handed the true mask, which a user of a blind tool
never has, so they are an upper bound for mask-based tools such as IOPaint's classical backends.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from restore.bench.metrics import psnr, ssim
from restore.io import read_image, to_float
from restore.tasks import dewatermark
from restore.tasks.base import Context, run_tiled
from restore.training.watermarks import WatermarkSynth, find_fonts

MASK_LEVEL = 0.5 / 255
LOOSE_BRUSH = 8


@dataclass
class WatermarkRow:
    method: str
    psnr: float
    ssim: float
    psnr_in_mask: float
    psnr_outside: float
    mask_iou: float | None
    mask_f1: float | None
    sec_per_mp: float
    images: int


def region_psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return psnr(a[where], b[where]) if where.any() else float("inf")


def brushed(mask: np.ndarray, grow: int) -> np.ndarray:
    """mask grown by `grow` pixels every way, as a user's square brush would overshoot it."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0 if grow else mask


def mask_scores(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    tp = float((pred & true).sum())
    union = float((pred | true).sum())
    return (tp / union if union else 1.0), (2 * tp / (pred.sum() + true.sum()) if union else 1.0)


def run_bench(paths: list[Path], ctx: Context, seed: int = 0, fonts: list[Path] | None = None,
              words: tuple[str, ...] | None = None, logos: list[Path] | None = None, turned: bool = False) -> list[WatermarkRow]:
    """fonts and words other than the training ones make the held-out (unseen watermark) variant; logos
    (PNGs with alpha) make every mark one of them instead of text; turned turns every mark a quarter."""
    synth = WatermarkSynth(find_fonts(fonts), **({"words": words} if words else {}), turn_share=1.0 if turned else 0.0,
                           **({"logos": logos, "text_share": 0.0, "user_logo_share": 1.0} if logos else {}))
    session = ctx.session(dewatermark.NAME)
    # Blind, as a user with only the photo: as served, and in one pass (the ensemble option off). Then
    # guided, as a user who also gives a mask: the true one, and a loose one (a brush LOOSE_BRUSH pixels wide
    # of the mark), which must help, not hurt.
    blind, guided = dewatermark.dewatermark_fn(session, hinted=False), dewatermark.dewatermark_fn(session, hinted=True)
    ours = {"restore (ours)": (blind, None),
            "restore, one pass": (dewatermark.dewatermark_fn(session, hinted=False, ensemble=False), None),
            "restore, given the true mask": (guided, 0),
            f"restore, given a mask {LOOSE_BRUSH} px loose": (guided, LOOSE_BRUSH)}
    methods = (*ours, "cv2.inpaint Telea, true mask", "cv2.inpaint NS, true mask", "watermarked input")
    acc = {m: {"psnr": [], "ssim": [], "in": [], "out": [], "iou": [], "f1": [], "sec": 0.0, "px": 0} for m in methods}
    for i, path in enumerate(paths):
        clean = to_float(read_image(path))
        clean = np.repeat(clean, 3, axis=2) if clean.shape[2] == 1 else clean  # a colour mark on a gray photo
        marked, alpha = synth.apply(clean, np.random.default_rng(seed + i))  # the synth-watermarks set
        marked = np.round(marked * 255) / 255
        true = alpha > MASK_LEVEL
        u8, mask_u8 = np.round(marked * 255).astype(np.uint8), true.astype(np.uint8) * 255
        outputs, found = {}, {}
        for method in methods:
            t0 = time.perf_counter()
            if method in ours:
                fn, grow = ours[method]
                x = marked if grow is None else np.dstack([marked, brushed(true, grow)])
                out = run_tiled(ctx, session, x.astype(np.float32), fn)
                outputs[method], found[method] = np.clip(out[..., :3], 0, 1), out[..., 3] > 0.5
            elif method.startswith("cv2"):
                flag = cv2.INPAINT_TELEA if "Telea" in method else cv2.INPAINT_NS
                outputs[method] = cv2.inpaint(u8, mask_u8, 3, flag) / 255.0
            else:
                outputs[method] = marked
            a = acc[method]
            a["sec"] += time.perf_counter() - t0
            a["px"] += clean.shape[0] * clean.shape[1]
        for method, out in outputs.items():
            out = (np.round(out * 255) / 255).astype(np.float32)  # what a saved 8-bit result holds, as the photo is held
            a = acc[method]
            a["psnr"].append(psnr(out, clean))
            a["ssim"].append(ssim(out, clean))
            a["in"].append(region_psnr(out, clean, true))
            a["out"].append(region_psnr(out, clean, ~true))
        for method, pred in found.items():
            iou, f1 = mask_scores(pred, true)
            acc[method]["iou"].append(iou)
            acc[method]["f1"].append(f1)
    finite = lambda v: float(np.mean([x for x in v if np.isfinite(x)])) if any(np.isfinite(x) for x in v) else float("inf")  # noqa: E731
    return [
        WatermarkRow(m, float(np.mean(a["psnr"])), float(np.mean(a["ssim"])), finite(a["in"]), finite(a["out"]),
                     float(np.mean(a["iou"])) if a["iou"] else None, float(np.mean(a["f1"])) if a["f1"] else None,
                     a["sec"] / (a["px"] / 1e6) if m != "watermarked input" else 0.0, len(paths))
        for m, a in acc.items()
    ]
