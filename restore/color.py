"""CIE Lab and colourfulness: what colorization works in and is judged by.

sRGB (D65) <-> Lab, exact formulas in numpy (OpenCV's float path uses table approximations that miss
by up to 1.3 8-bit steps on a round trip): L in [0, 100], a and b roughly in [-110, 110]. Colour is predicted as a distribution over a grid of ab bins (as in
Zhang et al., "Colorful Image Colorization", 2016): `ab_bins` is that grid, restricted to the ab pairs
that some sRGB colour reaches.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

AB_STEP = 10.0  # bin spacing in ab units


_RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_WHITE = np.array([0.95047, 1.0, 1.08883])  # D65
_RGB_TO_XYZN = (_RGB_TO_XYZ / _WHITE[:, None]).T.astype(np.float32)  # row vectors: xyz/white = rgb @ this
_XYZN_TO_RGB = np.linalg.inv(_RGB_TO_XYZ / _WHITE[:, None]).T.astype(np.float32)
_E = 6 / 29
_XYZN_TO_RGB_CV = np.ascontiguousarray(_XYZN_TO_RGB.T)  # cv2.transform's column-vector form


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB float in [0, 1] -> (..., 3) float32 Lab (D65)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    t = linear @ _RGB_TO_XYZN
    f = np.where(t > _E**3, np.cbrt(t), t / (3 * _E**2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1).astype(np.float32)


def _lab_to_linear(lab: np.ndarray) -> np.ndarray:
    lab = np.asarray(lab, dtype=np.float32)
    fy = (lab[..., 0] + 16) * np.float32(1 / 116)
    f = np.empty(lab.shape, np.float32)
    np.multiply(lab[..., 1], np.float32(1 / 500), out=f[..., 0])
    f[..., 0] += fy
    f[..., 1] = fy
    np.multiply(lab[..., 2], np.float32(-1 / 200), out=f[..., 2])
    f[..., 2] += fy
    t = np.where(f > _E, f * f * f, np.float32(3 * _E**2) * (f - np.float32(4 / 29)))
    # OpenCV's per-pixel 3x3 transform: a third of the time of numpy's (N, 3) @ (3, 3) for a photo's pixels.
    return cv2.transform(t.reshape(-1, 1, 3), _XYZN_TO_RGB_CV).reshape(t.shape)


def _encode(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear).astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """(..., 3) Lab -> (..., 3) sRGB float32 in [0, 1] (colours outside the sRGB gamut are clipped)."""
    return _encode(_lab_to_linear(np.asarray(lab, dtype=np.float32)))


def _out_of_gamut(linear: np.ndarray) -> np.ndarray:
    """(..., 3) linear RGB -> (...) bool: some channel outside [0, 1] (by more than rounding)."""
    return np.abs(linear - np.float32(0.5)).max(axis=-1) > np.float32(0.5 + 1e-6)


def lab_to_rgb_keep_lightness(lab: np.ndarray, steps: int = 8) -> np.ndarray:
    """Like lab_to_rgb, but a colour outside the sRGB gamut loses chroma (a and b scaled down together,
    by bisection) instead of being clipped per channel, which would change its lightness: the photo's
    own L, all its detail, comes through whatever colour is put on it."""
    lab = np.asarray(lab, dtype=np.float32)
    linear = _lab_to_linear(lab)
    outside = _out_of_gamut(linear)
    if outside.any():
        sub = lab[outside]
        lo, hi = np.zeros(len(sub), np.float32), np.ones(len(sub), np.float32)
        for _ in range(steps):
            mid = (lo + hi) / 2
            trial = _lab_to_linear(np.concatenate([sub[:, :1], sub[:, 1:] * mid[:, None]], axis=1))
            ok = ~_out_of_gamut(trial)
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        linear[outside] = _lab_to_linear(np.concatenate([sub[:, :1], sub[:, 1:] * lo[:, None]], axis=1))
    return _encode(linear)


def lightness(image: np.ndarray) -> np.ndarray:
    """L (H, W) float32 in [0, 100] of an (H, W, 1 | 3) uint8/uint16/float image.

    A gray pixel g is the colour (g, g, g); its L comes from a lookup table for integer images, so a
    50-megapixel gray photo costs one table lookup per pixel.
    """
    if image.shape[2] == 1:
        if np.issubdtype(image.dtype, np.integer):
            top = np.iinfo(image.dtype).max
            levels = np.arange(top + 1, dtype=np.float32) / top
            table = rgb_to_lab(np.repeat(levels[:, None], 3, axis=1))[:, 0]
            return table[image[..., 0]]
        return rgb_to_lab(np.repeat(image.astype(np.float32), 3, axis=2))[..., 0]
    out = np.empty(image.shape[:2], np.float32)
    top = float(np.iinfo(image.dtype).max) if np.issubdtype(image.dtype, np.integer) else 1.0
    for y in range(0, image.shape[0], 512):  # bands: the float copy of a big photo is never whole
        out[y : y + 512] = rgb_to_lab(image[y : y + 512].astype(np.float32) / top)[..., 0]
    return out


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """The gray version colorization starts from: the same L, a = b = 0. (..., 3) in [0, 1] -> same shape."""
    lab = rgb_to_lab(rgb)
    lab[..., 1:] = 0
    return lab_to_rgb(lab)


@lru_cache(maxsize=1)
def ab_bins() -> np.ndarray:
    """(Q, 2) float32 ab centres, AB_STEP apart, of every bin that an sRGB colour falls in."""
    levels = np.linspace(0, 1, 48, dtype=np.float32)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    ab = rgb_to_lab(cube)[:, 1:]
    cells = np.unique(np.round(ab / AB_STEP).astype(np.int64), axis=0)
    return (cells * AB_STEP).astype(np.float32)


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk (2003) colourfulness M of an (H, W, 3) image in [0, 1], on the 0-255 scale
    their thresholds use (about 33 'moderately', 45 'quite', 59 'highly colourful')."""
    x = rgb.astype(np.float64) * 255
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
