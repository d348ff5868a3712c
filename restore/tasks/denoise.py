"""denoise: the blind denoising autoencoder, with an optional noise level."""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from restore.engine import Session
from restore.tasks.base import Context, Options, run_tiled

NAME = "denoise"


class DenoiseOptions(Options):
    sigma: float | Literal["auto"] = Field(
        "auto",
        description="noise level on the 0-255 scale to remove, or 'auto' (blind). Below the estimated level "
        "the result keeps part of the noise (strength = sigma / estimated); 0 returns the input unchanged.",
    )

    def model_post_init(self, _):
        if self.sigma != "auto" and not 0 <= self.sigma <= 100:
            raise ValueError("sigma must be 'auto' or between 0 and 100")


def estimate_sigma(image: np.ndarray) -> float:
    """Noise standard deviation on the 0-255 scale from the diagonal Haar detail (Donoho's MAD).

    Measured on at most a central 2048x2048 crop: enough samples, bounded time for any image size.
    """
    h, w = image.shape[:2]
    y, x = max(0, (h - 2048) // 2), max(0, (w - 2048) // 2)
    crop = image[y : y + 2048, x : x + 2048].astype(np.float32)
    crop *= 255.0 / (np.iinfo(image.dtype).max if np.issubdtype(image.dtype, np.integer) else 1.0)
    crop = crop[: crop.shape[0] // 2 * 2, : crop.shape[1] // 2 * 2]
    if crop.size == 0:
        return 0.0
    # Per channel, pooled: averaging channels first would divide independent noise by sqrt(3).
    hh = (crop[0::2, 0::2] - crop[0::2, 1::2] - crop[1::2, 0::2] + crop[1::2, 1::2]) / 2
    return float(np.median(np.abs(hh)) / 0.6745)


def denoise_fn(session: Session, strength: float = 1.0):
    """The tile function. Gray tiles run as three equal channels (as trained) and are averaged back.
    strength < 1 blends the input back in: the blind model cannot be told a noise level, but a gentler
    result that keeps some grain can be asked for."""

    def fn(x: np.ndarray) -> np.ndarray:
        channels = x.shape[1]
        y = session.run(np.repeat(x, 3, axis=1) if channels == 1 else x.astype(np.float32, copy=False))
        if channels == 1:
            y = y.mean(axis=1, keepdims=True)
        return y if strength == 1.0 else x + strength * (y - x)

    return fn


def run(image: np.ndarray, options: DenoiseOptions, ctx: Context) -> tuple[np.ndarray, dict]:
    """image: (H, W, C) uint8/uint16/float32. Returns the same shape and dtype, and the job's metrics."""
    estimated = estimate_sigma(image)
    metrics = {"sigma_estimated": round(estimated, 2), "sigma_used": options.sigma}
    if options.sigma == 0:
        return image.copy(), metrics
    strength = 1.0 if options.sigma == "auto" else float(min(1.0, options.sigma / max(estimated, 0.5)))
    metrics["strength"] = round(strength, 3)
    session = ctx.session(NAME)
    metrics.update(model=f"{session.model.name}@{session.model.version}", providers=session.providers)
    return run_tiled(ctx, session, image, denoise_fn(session, strength)), metrics
