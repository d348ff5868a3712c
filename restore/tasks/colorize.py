"""colorize: several plausible colourings of a gray photo from the conditional VAE.

The model sees only the lightness L, scaled so the long side is the model's working size, and gives
logits over ab bins at a quarter of that size. Those are decoded to ab by the annealed mean (Zhang
et al. 2016: the mean of the distribution sharpened by the manifest's temperature; at 1, the plain
mean), upsampled, and recombined with the full-resolution L, so every detail of the input survives and
memory grows only with the output. Sample 0 uses z = 0, which the model was trained to read as "nothing
known beyond L" (the most likely colouring); samples 1.. draw z from N(0, I) with the job's seed, one
vector per photo, so each is a coherent colour scheme.
"""
from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from restore.color import lab_to_rgb_keep_lightness, lightness
from restore.engine import Session
from restore.tasks.base import Context, Options

NAME = "colorize"
MAX_SAMPLES = 8
BAND = 512  # rows per band when composing the full-size output


class ColorizeOptions(Options):
    samples: int = Field(1, ge=1, le=MAX_SAMPLES, description="how many colourings to return; the first is the most likely")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed for samples after the first: the same seed gives the same samples")


def working_shape(height: int, width: int, side: int, multiple: int) -> tuple[int, int]:
    """(h, w) with the long side `side`, the aspect kept, each a multiple of `multiple` (at least one)."""
    scale = side / max(height, width)
    return tuple(max(multiple, int(round(n * scale / multiple)) * multiple) for n in (height, width))


def annealed_mean(logits: np.ndarray, bins: np.ndarray, temperature: float) -> np.ndarray:
    """(N, Q, h, w) logits -> (N, 2, h, w) ab: the expectation of softmax(logits / T) over the bin centres."""
    z = logits / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    p = z / z.sum(axis=1, keepdims=True)
    return np.einsum("nqhw,qc->nchw", p, bins, optimize=True)


def latents(samples: int, seed: int, channels: int) -> np.ndarray:
    """(samples, channels, 1, 1): one z per photo (a colour scheme), zeros first, then N(0, I) draws that
    depend only on the seed."""
    z = np.zeros((samples, channels, 1, 1), np.float32)
    if samples > 1 and channels:
        z[1:] = np.random.default_rng(seed).standard_normal((samples - 1, channels, 1, 1), dtype=np.float32)
    return z


def predict_ab(session: Session, L: np.ndarray, samples: int, seed: int, temperature: float | None = None) -> np.ndarray:
    """L (H, W) in [0, 100] -> (samples, 2, h, w) ab at a quarter of the model's working size.
    temperature: the annealed mean's (default: the manifest's)."""
    spec, out = session.model.input, session.model.output["logits"]
    h, w = working_shape(*L.shape, int(spec["working_size"]), session.model.stride)
    interpolation = cv2.INTER_AREA if h < L.shape[0] else cv2.INTER_LINEAR
    small = cv2.resize(L, (w, h), interpolation=interpolation)[None, None] / 100.0
    latent = int(spec.get("latent", 0))
    if latent:
        z = latents(samples, seed, latent)
        (logits,) = session.outputs(np.repeat(small, samples, axis=0).astype(np.float32), z)
    else:  # the deterministic baseline: every sample is the same
        (logits,) = session.outputs(small.astype(np.float32))
        logits = np.repeat(logits, samples, axis=0)
    return annealed_mean(logits, np.asarray(out["bins"], np.float32), temperature or float(out["temperature"]))


def _linear_weights(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear resampling along one axis with pixel centres aligned (as cv2.resize): for each output
    index, the two input indices and the weight of the second."""
    x = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = np.floor(x).astype(np.int64)
    return i0, np.minimum(i0 + 1, n_in - 1), (x - i0).astype(np.float32)[:, None]


def compose(L: np.ndarray, ab: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Full-size L (H, W) and small ab (2, h, w) -> (H, W, 3) RGB of dtype, band by band.

    ab is interpolated across to the full width once (h rows), then each band's rows are interpolated
    from those, so no full-size float copy of the colour ever exists. (OpenCV's warps would do it per
    band too, but they round coordinates to 1/32 pixel, and near the gamut's edge that shows.)
    """
    H, W = L.shape
    small = ab.transpose(1, 2, 0)
    x0, x1, wx = _linear_weights(W, small.shape[1])
    across = small[:, x0] * (1 - wx) + small[:, x1] * wx  # (h, W, 2)
    y0s, y1s, wy = _linear_weights(H, small.shape[0])
    top = np.iinfo(dtype).max
    out = np.empty((H, W, 3), dtype)
    for y in range(0, H, BAND):
        rows = slice(y, min(H, y + BAND))
        w = wy[rows][:, :, None]
        band_ab = across[y0s[rows]] * (1 - w) + across[y1s[rows]] * w
        lab = np.concatenate([L[rows, :, None], band_ab], axis=2)
        out[rows] = np.round(lab_to_rgb_keep_lightness(lab) * top).astype(dtype)
    return out


def colorize_image(session: Session, image: np.ndarray, samples: int, seed: int, temperature: float | None = None) -> list[np.ndarray]:
    """(H, W, 1 | 3) uint8/uint16 -> `samples` colourings, each (H, W, 3) of the same dtype. A colour
    input is reduced to its lightness first."""
    L = lightness(image)
    return [compose(L, ab, image.dtype) for ab in predict_ab(session, L, samples, seed, temperature)]


def run(image: np.ndarray, options: ColorizeOptions, ctx: Context) -> tuple[list[np.ndarray], dict]:
    """image: (H, W, C) uint8/uint16. Returns the colourings (the most likely first) and the job's metrics."""
    session = ctx.session(NAME)
    outputs = colorize_image(session, image, options.samples, options.seed)
    if ctx.progress:
        ctx.progress(1, 1)
    metrics = {
        "samples": options.samples,
        "seed": options.seed,
        "converted_to_gray": image.shape[2] == 3,  # a colour input's own colours are discarded first
        "model": f"{session.model.name}@{session.model.version}",
        "providers": session.providers,
    }
    return outputs, metrics
