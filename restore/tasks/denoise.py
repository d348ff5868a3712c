"""denoise: the blind denoising autoencoder, for camera and phone noise, noisy JPEGs, grain and Gaussian
noise alike, with a strength that removes colour noise first and brightness grain second."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from restore.engine import Session
from restore.tasks.base import Context, Options, Task, run_tiled

NAME = "denoise"


class DenoiseOptions(Options):
    RENAMED: ClassVar[tuple[str, ...]] = ("sigma",)
    strength: float = Field(
        1.0, ge=0.0, le=1.0,
        description="how much noise to take out, 0-1. From 0 to 0.5 the colour noise goes (blotches), "
        "from 0.5 to 1 the brightness noise (grain): 0.5 keeps the grain and removes the colour noise; "
        "0 returns the input unchanged",
    )

    @model_validator(mode="before")
    @classmethod
    def _sigma_is_strength_now(cls, values: Any) -> Any:
        """`sigma` once set a Gaussian noise level; real noise has none, so the model finds the noise itself
        and `strength` sets how much of it to take out. 'auto' still means the full strength."""
        if isinstance(values, dict) and "sigma" in values:
            values = dict(values)
            sigma = values.pop("sigma")
            if sigma != "auto":
                raise ValueError(f"sigma ({sigma!r}) was replaced by strength: 0-1, 1 takes out all the noise the model "
                                 "finds, 0.5 only the colour noise; the model measures the noise itself")
        return values


def weights(strength: float) -> tuple[float, float]:
    """(brightness, colour) share of the model's correction kept at a strength: colour first."""
    return max(0.0, 2 * strength - 1), min(1.0, 2 * strength)


class Removed:
    """Accumulates the squared size of what the model takes out (at full strength), for the noise level."""

    def __init__(self):
        self.sum, self.count = 0.0, 0

    def add(self, delta: np.ndarray) -> None:
        self.sum += float(np.square(delta, dtype=np.float64).sum())
        self.count += delta.size

    @property
    def level(self) -> float:
        """Root mean square on the 0-255 scale: the standard deviation of white Gaussian noise as strong."""
        return 255 * (self.sum / self.count) ** 0.5 if self.count else 0.0


def denoise_fn(session: Session, strength: float = 1.0, removed: Removed | None = None):
    """The tile function. Gray tiles run as three equal channels (as trained) and are averaged back.
    Below strength 1 the model's correction is split into brightness (the channels' mean) and colour
    (the rest), and each is scaled by its share (see weights)."""
    luma_share, chroma_share = weights(strength)

    def fn(x: np.ndarray) -> np.ndarray:
        channels = x.shape[1]
        x = x.astype(np.float32, copy=False)
        y = session.run(np.repeat(x, 3, axis=1) if channels == 1 else x)
        if channels == 1:
            y = y.mean(axis=1, keepdims=True)
        delta = y - x
        if removed is not None:
            removed.add(delta)
        if strength == 1.0:
            return y
        luma = delta.mean(axis=1, keepdims=True)
        return x + luma_share * luma + chroma_share * (delta - luma)

    return fn


def run(image: np.ndarray, options: DenoiseOptions, ctx: Context, guidance: dict) -> tuple[list[np.ndarray], dict]:
    """image: (H, W, C) uint8/uint16/float32. Returns the same shape and dtype, and the job's metrics."""
    metrics: dict = {"strength": options.strength}
    if options.strength == 0:
        return [image.copy()], metrics
    session = ctx.session(NAME)
    removed = Removed()
    out = run_tiled(ctx, session, image, denoise_fn(session, options.strength, removed))
    metrics.update(noise_removed=round(removed.level, 2), **session.describe())
    return [out], metrics


TASK = Task(
    name=NAME,
    summary="Remove noise: camera and phone noise, noisy JPEGs, film grain, Gaussian noise.",
    options=DenoiseOptions,
    run=run,
    example="restore denoise photo.jpg -o clean.jpg --strength 0.5",
)
