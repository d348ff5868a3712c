"""colorize: several plausible colourings of a gray photo from the conditional VAE, steered by colour hints.

The model sees only the lightness L, scaled so the long side is the model's working size, and the
user's colour hints at that size (the hinted a and b, and where they are), and gives logits over ab bins
at a quarter of that size. Those are decoded to ab by the annealed mean (Zhang et al. 2016: the mean of
the distribution sharpened by the manifest's temperature; at 1, the plain mean), corrected towards the
hints around each hinted cell, upsampled, and recombined with the full-resolution L, so every detail of
the input survives and memory grows only with the output. Hinted pixels get exactly the hinted a and b.

Sample 0 uses z = 0, which the model was trained to read as "nothing known beyond L and the hints" (the
most likely colouring). Samples 1.. draw z from N(0, I) with the job's seed. z is one vector per photo, a
colour scheme, so samples differ mostly in their overall colours, less region by region (`restore bench
colorize` reports their diversity with and without each sample's mean colour); the user's own hints hold
in every sample.
"""
from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from restore.color import lab_to_rgb_keep_lightness, lightness
from restore.engine import Session
from restore.errors import ModelError
from restore.guidance import Hints, hints_at
from restore.tasks.base import Context, Options, Task

NAME = "colorize"
MAX_SAMPLES = 8
BAND = 512  # rows per band when composing the full-size output


MAX_POINTS = 1000
AB_SCALE = 110.0  # the model's hint input is a / AB_SCALE, b / AB_SCALE
# How hints spread (see spread): chosen on 40 ImageNet1000 photos, not the bench's; 1 and 10 hint points scored
# within 0.05 and 0.1 dB of the best for L steps 6-8 and pulls 0.0006-0.0017.
SPREAD_L, SPREAD_PULL = 8.0, 0.001


class HintPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    x: int = Field(ge=0, description="pixels from the left edge, from 0")
    y: int = Field(ge=0, description="pixels from the top edge, from 0")
    color: str = Field(pattern=r"^#?[0-9a-fA-F]{6}$", description="#RRGGBB")


class ColorizeOptions(Options):
    samples: int = Field(1, ge=1, le=MAX_SAMPLES, description="how many colourings to return; the first is the most likely")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed for samples after the first: the same seed gives the same samples")
    hints: list[HintPoint] = Field(default_factory=list, max_length=MAX_POINTS,
                                   description='colours known at single pixels: [{"x": 120, "y": 45, "color": "#c0392b"}]')

    def points(self) -> list[tuple[int, int, str]]:
        return [(h.x, h.y, h.color) for h in self.hints]


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


def decode(logits: np.ndarray, out: dict, temperature: float | None = None) -> np.ndarray:
    """(N, Q, h, w) logits -> (N, 2, h, w) ab as the manifest's output spec says: the annealed mean of the
    (rebalanced, so vivid) distribution; and where the spec gives a `mean` decoding (the distribution without
    rebalancing, sharpened), each colouring's overall colour is that one's instead. Rebalancing favours
    rare colours, which keeps local colour vivid but also shifts a photo's overall colour towards them (a
    cast); the plain distribution's mean is the better guess of the overall colour."""
    bins = np.asarray(out["bins"], np.float32)
    ab = annealed_mean(logits, bins, temperature or float(out["temperature"]))
    plain = out.get("mean")
    if plain:
        shift = np.asarray(plain["shift"], np.float32)[None, :, None, None]
        overall = annealed_mean(logits + shift, bins, float(plain["temperature"])).mean(axis=(2, 3), keepdims=True)
        ab = ab - ab.mean(axis=(2, 3), keepdims=True) + overall
    return ab


def latents(samples: int, seed: int, channels: int) -> np.ndarray:
    """(samples, channels, 1, 1): one z per photo (a colour scheme), zeros first, then N(0, I) draws that
    depend only on the seed."""
    z = np.zeros((samples, channels, 1, 1), np.float32)
    if samples > 1 and channels:
        z[1:] = np.random.default_rng(seed).standard_normal((samples - 1, channels, 1, 1), dtype=np.float32)
    return z


def hint_cells(hints: Hints, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The hints gathered on an (h, w) grid over the photo: the mean hinted a and b of each cell, (2, h, w)
    (0 where none), and where cells hold hints, (h, w) bool."""
    h, w = shape
    width, height = hints.size
    cell = ((hints.rows * h) // height) * w + (hints.cols * w) // width
    count = np.bincount(cell, minlength=h * w)
    mean = np.stack([np.bincount(cell, hints.ab[:, c], minlength=h * w) for c in range(2)]) / np.maximum(count, 1)
    return mean.reshape(2, h, w), (count > 0).reshape(h, w)


def hint_input(hints: Hints, shape: tuple[int, int]) -> np.ndarray:
    """(3, h, w) at the working size: the mean hinted a and b / AB_SCALE of each working pixel that holds
    hints, and 1 there; zeros elsewhere."""
    out = np.zeros((3, *shape), np.float32)
    if len(hints):
        mean, hinted = hint_cells(hints, shape)
        out[:2] = mean / AB_SCALE
        out[2] = hinted
    return out


def predict_ab(session: Session, L: np.ndarray, samples: int, seed: int, temperature: float | None = None,
               hints: Hints | None = None) -> np.ndarray:
    """L (H, W) in [0, 100] -> (samples, 2, h, w) ab at a quarter of the model's working size.
    temperature: the annealed mean's (default: the manifest's). hints: the user's, for a model that takes
    them (a model without that input colours from L alone)."""
    spec, out = session.model.input, session.model.output["logits"]
    temperature = temperature or float(out["temperature"])
    h, w = working_shape(*L.shape, int(spec["working_size"]), session.model.stride)
    interpolation = cv2.INTER_AREA if h < L.shape[0] else cv2.INTER_LINEAR
    small = (cv2.resize(L, (w, h), interpolation=interpolation)[None, None] / 100.0).astype(np.float32)
    latent = int(spec.get("latent", 0))
    if not latent:  # the deterministic baseline: every sample is the same
        (logits,) = session.outputs(small)
        return decode(np.repeat(logits, samples, axis=0), out, temperature)
    hinted = "hint" in spec
    hint = hint_input(hints if hints is not None else Hints.none(L.shape[::-1]), (h, w))[None]
    z = latents(samples, seed, latent)
    results = [session.outputs(small, z[i : i + 1], *([hint] if hinted else []))[0] for i in range(samples)]
    return decode(np.concatenate(results), out, temperature)


def towards_hints(ab: np.ndarray, hints: Hints, L: np.ndarray) -> np.ndarray:
    """(2, hq, wq) quarter-size ab corrected towards the hints: each hinted cell takes its hints' mean, and
    the correction spreads to the cells around it through similar lightness, fading across edges and with
    distance (an edge-aware diffusion on the quarter-size grid, after Levin et al., "Colorization using
    Optimization", 2004), so a hint recolours the region it is in. L: the photo's lightness, full size."""
    if not len(hints):
        return ab
    hq, wq = ab.shape[1:]
    target, fixed = hint_cells(hints, (hq, wq))
    cells = cv2.resize(L, (wq, hq), interpolation=cv2.INTER_AREA).astype(np.float64)
    return (ab + spread(np.where(fixed, target - ab, 0.0), fixed, cells)).astype(np.float32)


def spread(pinned: np.ndarray, fixed: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """The diffusion's steady state: r = pinned where fixed ((hq, wq) bool), and elsewhere each cell's r is
    the weighted mean of its four neighbours' and of 0 (weight SPREAD_PULL, which makes a correction fade
    with distance); a neighbour's weight falls with the lightness step to it (SPREAD_L in L units).
    pinned: (2, hq, wq); cells: (hq, wq) lightness.

    The equations couple each row of cells only to the rows above and below, so they are solved exactly,
    row by row (block tridiagonal elimination): a few milliseconds for the model's grid, where iterating
    the diffusion to the same accuracy takes thousands of sweeps."""
    if fixed.shape[0] < fixed.shape[1]:  # rows along the longer side: fewer, smaller blocks
        return spread(pinned.transpose(0, 2, 1), fixed.T, cells.T).transpose(0, 2, 1)
    m, k = fixed.shape
    down = np.exp(-((cells[1:] - cells[:-1]) ** 2) / (2 * SPREAD_L**2))  # (m - 1, k)
    right = np.exp(-((cells[:, 1:] - cells[:, :-1]) ** 2) / (2 * SPREAD_L**2))  # (m, k - 1)
    degree = np.full((m, k), SPREAD_PULL)
    degree[1:] += down
    degree[:-1] += down
    degree[:, 1:] += right
    degree[:, :-1] += right
    free = ~fixed
    # Row i's equations: (coupling to row i - 1) * r[i-1] + blocks[i] @ r[i] + (coupling to row i + 1) * r[i+1]
    # = given[i], where a fixed cell's equation is r = pinned. Eliminated downwards, each row is solved for
    # r[i] = partial[i] - carry[i] @ r[i+1], then substituted back upwards.
    diagonal, off = np.arange(k), np.arange(k - 1)
    blocks = np.zeros((m, k, k))
    blocks[:, diagonal, diagonal] = np.where(free, degree, 1.0)
    blocks[:, off, off + 1] = -right * free[:, :-1]
    blocks[:, off + 1, off] = -right * free[:, 1:]
    lower = -down * free[1:]  # (m - 1, k): row i's coupling to row i - 1 is lower[i - 1]
    sides = np.zeros((m, k, k + 2))  # [diagonal coupling to row i + 1 | given]
    sides[:-1, diagonal, diagonal] = -down * free[:-1]
    sides[:, :, k:] = np.where(fixed, pinned, 0.0).transpose(1, 2, 0)
    solved = np.empty((m, k, k + 2))  # [carry | partial]
    solved[0] = np.linalg.solve(blocks[0], sides[0])
    for i in range(1, m):
        scaled = lower[i - 1][:, None] * solved[i - 1]
        blocks[i] -= scaled[:, :k]
        sides[i, :, k:] -= scaled[:, k:]
        solved[i] = np.linalg.solve(blocks[i], sides[i])
    r = np.empty((m, k, 2))
    r[-1] = solved[-1, :, k:]
    for i in range(m - 2, -1, -1):
        r[i] = solved[i, :, k:] - solved[i, :, :k] @ r[i + 1]
    return r.transpose(2, 0, 1)


def _linear_weights(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear resampling along one axis with pixel centres aligned (as cv2.resize): for each output
    index, the two input indices and the weight of the second."""
    x = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = np.floor(x).astype(np.int64)
    return i0, np.minimum(i0 + 1, n_in - 1), (x - i0).astype(np.float32)[:, None]


def compose(L: np.ndarray, ab: np.ndarray, dtype: np.dtype, hints: Hints | None = None) -> np.ndarray:
    """Full-size L (H, W) and small ab (2, h, w) -> (H, W, 3) RGB of dtype, band by band; hinted pixels
    get exactly their hint's a and b (at the photo's L; out of gamut, the least chroma loss that fits).

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
    order = np.argsort(hints.rows, kind="stable") if hints is not None and len(hints) else None
    sorted_rows = hints.rows[order] if order is not None else None
    for y in range(0, H, BAND):
        rows = slice(y, min(H, y + BAND))
        w = wy[rows][:, :, None]
        band_ab = across[y0s[rows]] * (1 - w) + across[y1s[rows]] * w
        if order is not None:
            lo, hi = np.searchsorted(sorted_rows, [rows.start, rows.stop])
            inside = order[lo:hi]
            band_ab[hints.rows[inside] - y, hints.cols[inside]] = hints.ab[inside]
        lab = np.concatenate([L[rows, :, None], band_ab], axis=2)
        out[rows] = np.round(lab_to_rgb_keep_lightness(lab) * top).astype(dtype)
    return out


def colorize_image(session: Session, image: np.ndarray, samples: int, seed: int, temperature: float | None = None,
                   hints: Hints | None = None) -> list[np.ndarray]:
    """(H, W, 1 | 3) uint8/uint16 -> `samples` colourings, each (H, W, 3) of the same dtype. A colour
    input is reduced to its lightness first."""
    L = lightness(image)
    hinted = hints if hints is not None and len(hints) else None
    return [compose(L, towards_hints(ab, hinted, L) if hinted else ab, image.dtype, hinted)
            for ab in predict_ab(session, L, samples, seed, temperature, hints)]


def check(options: ColorizeOptions, size: tuple[int, int]) -> None:
    hints_at(options.points(), size)  # a point outside the image is refused before any work


def run(image: np.ndarray, options: ColorizeOptions, ctx: Context, guidance: dict) -> tuple[list[np.ndarray], dict]:
    """image: (H, W, C) uint8/uint16. Returns the colourings (the most likely first) and the job's metrics.
    guidance["hints"]: None or the hints painted on an image; options.hints add single points."""
    session = ctx.session(NAME)
    size = (image.shape[1], image.shape[0])
    hints = (guidance.get("hints") or hints_at((), size)).merged(hints_at(options.points(), size))
    if len(hints) and "hint" not in session.model.input:
        raise ModelError(f"model {session.model.name}@{session.model.version} does not take colour hints")
    outputs = colorize_image(session, image, options.samples, options.seed, hints=hints)
    if ctx.progress:
        ctx.progress(1, 1)
    metrics = {
        "samples": options.samples,
        "seed": options.seed,
        "hinted_pixels": len(hints),
        "converted_to_gray": image.shape[2] == 3,  # a colour input's own colours are discarded first
        **session.describe(),
    }
    return outputs, metrics


TASK = Task(
    name=NAME,
    summary="Colorize gray photos; steer the colours with hints (colour input is made gray first).",
    options=ColorizeOptions,
    run=run,
    guidance=("hints",),
    example="restore colorize old.jpg -o colour.jpg --samples 3 --hint 120,45,#c0392b",
    check=check,
)
