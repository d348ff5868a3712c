"""dewatermark: find and repaint visible watermarks, blind (no mask needed)."""
from __future__ import annotations

import numpy as np

from restore.engine import Session
from restore.tasks.base import Context, Options, run_tiled

NAME = "dewatermark"


class DewatermarkOptions(Options):
    pass


def dewatermark_fn(session: Session):
    """The tile function: (1, C, h, w) -> (1, C + 1, h, w), the restored image and the found mask.
    Gray tiles run as three equal channels and are averaged back."""

    def fn(x: np.ndarray) -> np.ndarray:
        channels = x.shape[1]
        restored, mask = session.outputs(np.repeat(x, 3, axis=1) if channels == 1 else x.astype(np.float32, copy=False))
        if channels == 1:
            restored = restored.mean(axis=1, keepdims=True)
        return np.concatenate([restored, mask], axis=1)

    return fn


def run(image: np.ndarray, options: DewatermarkOptions, ctx: Context) -> tuple[np.ndarray, dict]:
    """image: (H, W, C) uint8/uint16/float32. Returns the same shape and dtype, and the job's metrics.
    Pixels the model finds unmarked come back exactly as they were."""
    session = ctx.session(NAME)
    out = run_tiled(ctx, session, image, dewatermark_fn(session))
    channels = image.shape[2]
    color, mask = out[..., :channels], out[..., channels]
    half = 0.5 * (np.iinfo(mask.dtype).max if np.issubdtype(mask.dtype, np.integer) else 1.0)
    metrics = {
        "watermarked_fraction": round(float((mask > half).mean()), 5),
        "model": f"{session.model.name}@{session.model.version}",
        "providers": session.providers,
    }
    return np.ascontiguousarray(color), metrics
