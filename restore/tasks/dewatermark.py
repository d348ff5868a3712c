"""dewatermark: find and repaint visible watermarks, blind, or guided by the user's mask when given."""
from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from restore.engine import Session
from restore.tasks.base import Context, Options, Task, run_tiled

NAME = "dewatermark"
# Inside the found marks the output mixes the model's repaint with OpenCV's inpainting (Navier-Stokes) of
# the same pixels. Their errors differ: the model's is grain left by the mark, inpainting's a smooth guess,
# which is right where the photo around the mark is smooth and wrong where it is textured. So inpainting's
# share falls from INPAINT_SMOOTH to INPAINT_TEXTURED as the local spread of the inpainted photo (standard
# deviation of its luma over 7x7 pixels, 0-255 scale) rises over TEXTURE_RAMP. On `restore bench dewatermark`
# this scores about 0.4 dB above a fixed half; the optimum is flat (shares 0.75-0.9 and 0.15-0.3, ramps from
# 2-3 to 10-16 all within 0.1 dB).
INPAINT_SMOOTH, INPAINT_TEXTURED = 0.8, 0.2
TEXTURE_RAMP = (2.0, 12.0)
ENSEMBLE_DEFAULT = True


class DewatermarkOptions(Options):
    ensemble: bool = Field(
        ENSEMBLE_DEFAULT,
        description="also run the model on the photo turned 180 degrees and average the two (twice the time)",
    )


def dewatermark_fn(session: Session, hinted: bool, ensemble: bool = ENSEMBLE_DEFAULT):
    """The tile function: (1, C [+ 1 hint], h, w) -> (1, C + 1, h, w), the restored image and the found
    mask. Without a hint the model gets zeros (blind). Gray tiles run as three equal channels."""

    def fn(x: np.ndarray) -> np.ndarray:
        image, hint = (x[:, :-1], x[:, -1:]) if hinted else (x, np.zeros_like(x[:, :1]))
        channels = image.shape[1]
        rgb = (np.repeat(image, 3, axis=1) if channels == 1 else image).astype(np.float32, copy=False)
        hint = hint.astype(np.float32, copy=False)
        restored, mask = session.outputs(rgb, hint)
        if ensemble:
            turned = [np.ascontiguousarray(_turn(a)) for a in (rgb, hint)]
            other, other_mask = (_turn(a) for a in session.outputs(*turned))
            mask = (mask + other_mask) / 2
            # The mean mask applied to the mean of the two outputs: a pixel only one run finds marked changes
            # a quarter as much, and a pixel neither finds stays exactly as it was.
            restored = mask * (restored + other) / 2 + (1 - mask) * rgb
        restored = np.stack([_blend_inpainting(*args) for args in zip(rgb, restored, mask[:, 0] > 0.5)])
        if channels == 1:
            restored = restored.mean(axis=1, keepdims=True)
        return np.concatenate([restored, mask], axis=1)

    return fn


def _turn(a: np.ndarray) -> np.ndarray:
    """(N, C, h, w) turned by 180 degrees (its own inverse)."""
    return a[..., ::-1, ::-1]


def _blend_inpainting(image: np.ndarray, restored: np.ndarray, found: np.ndarray) -> np.ndarray:
    """image, restored: (3, h, w) float in [0, 1]; found: (h, w) bool. Mixes inpainting into the found pixels."""
    if not found.any():
        return restored
    u8 = np.round(np.clip(image.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)
    filled = cv2.inpaint(u8, found.astype(np.uint8), 3, cv2.INPAINT_NS)
    luma = cv2.cvtColor(filled, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = cv2.blur(luma, (7, 7))
    spread = np.sqrt(np.maximum(cv2.blur(luma * luma, (7, 7)) - mean * mean, 0))
    low, high = TEXTURE_RAMP
    share = INPAINT_SMOOTH - (INPAINT_SMOOTH - INPAINT_TEXTURED) * np.clip((spread - low) / (high - low), 0, 1)
    filled = filled.transpose(2, 0, 1) / np.float32(255)
    return np.where(found, (1 - share) * restored + share * filled, restored).astype(np.float32)


def run(image: np.ndarray, options: DewatermarkOptions, ctx: Context, guidance: dict) -> tuple[list[np.ndarray], dict]:
    """image: (H, W, C) uint8/uint16/float32; guidance["mask"]: None or (H, W) uint8, 255 where the
    user says the watermark is. Returns the same shape and dtype, and the job's metrics. Pixels the model
    finds unmarked come back exactly as they were."""
    mask = guidance.get("mask")
    session = ctx.session(NAME)
    channels = image.shape[2]
    if mask is not None:  # the hint travels through the tiles as one more channel of the image
        if image.dtype == np.uint16:
            mask = mask.astype(np.uint16) * np.uint16(257)
        elif image.dtype != np.uint8:
            mask = mask.astype(image.dtype) / 255
        image = np.dstack([image, mask])
    out = run_tiled(ctx, session, image, dewatermark_fn(session, hinted=mask is not None, ensemble=options.ensemble))
    color, found = out[..., :channels], out[..., channels]
    half = 0.5 * (np.iinfo(found.dtype).max if np.issubdtype(found.dtype, np.integer) else 1.0)
    metrics = {
        "watermarked_fraction": round(float((found > half).mean()), 5),
        "guided": mask is not None,
        "ensemble": options.ensemble,
        **session.describe(),
    }
    return [np.ascontiguousarray(color)], metrics


TASK = Task(
    name=NAME,
    summary="Find and remove visible watermarks (text, logos, tiled patterns); a mask is optional.",
    options=DewatermarkOptions,
    run=run,
    guidance=("mask",),
    example="restore dewatermark marked.jpg -o clean.jpg [--mask mask.png]",
)
