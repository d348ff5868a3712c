"""Guidance: what a user tells a task besides the photo. Each kind is an image of the photo's size.

- mask (dewatermark): white (or opaque) where the damage is.
- hints (colorize): the colour where the user knows it, transparent (or black without an alpha channel)
  elsewhere; and single points, `x, y, #RRGGBB`, as options. A hint's colour gives its a and b; the
  photo's own lightness is kept.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from restore.color import rgb_to_lab
from restore.errors import InputError
from restore.io import Picture

COLOUR = re.compile(r"#?([0-9a-fA-F]{6})")
BAND = 1024  # rows of a mask or hints image read at a time: no full-size float copy of it is made


@dataclass(frozen=True)
class Kind:
    name: str
    help: str


KINDS = {
    "mask": Kind("mask", "an image the photo's size, white where the watermark is (exact or brushed loosely around it)"),
    "hints": Kind("hints", "an image the photo's size, painted with the known colours where they are, transparent elsewhere"),
}


def _scale(picture: Picture) -> float:
    return float(np.iinfo(picture.color.dtype).max)


def mask_from(picture: Picture) -> np.ndarray:
    """(H, W) uint8, 255 = damage: the mean of the channels times the alpha, white (opaque) = damage.
    Eight bits are plenty for a mask, and a band at a time keeps a 50-megapixel mask at 50 MB."""
    top = np.float32(_scale(picture))
    mask = np.empty(picture.color.shape[:2], np.uint8)
    for y in range(0, mask.shape[0], BAND):
        m = picture.color[y : y + BAND].mean(axis=2, dtype=np.float32) / top
        if picture.alpha is not None:
            m *= picture.alpha[y : y + BAND] / top
        mask[y : y + BAND] = np.round(m * 255)
    return mask


@dataclass(frozen=True)
class Hints:
    """Sparse colour hints: the hinted pixels (row, column) of an image of `size` (width, height) and
    each one's a and b (CIE Lab)."""

    size: tuple[int, int]
    rows: np.ndarray  # (n,) int64
    cols: np.ndarray  # (n,) int64
    ab: np.ndarray  # (n, 2) float32

    @classmethod
    def none(cls, size: tuple[int, int]) -> Hints:
        empty = np.zeros(0, np.int64)
        return cls(size, empty, empty, np.zeros((0, 2), np.float32))

    def __len__(self) -> int:
        return len(self.rows)

    def merged(self, other: Hints) -> Hints:
        """Both sets; where both hint a pixel, `other`'s colour."""
        rows, cols = np.concatenate([self.rows, other.rows]), np.concatenate([self.cols, other.cols])
        ab = np.concatenate([self.ab, other.ab])
        flat = rows * self.size[0] + cols
        _, last = np.unique(flat[::-1], return_index=True)
        keep = np.sort(len(flat) - 1 - last)
        return Hints(self.size, rows[keep], cols[keep], ab[keep])


def ab_of(rgb: np.ndarray) -> np.ndarray:
    """(n, 3) sRGB in [0, 1] -> (n, 2) ab."""
    return rgb_to_lab(rgb.reshape(-1, 1, 3))[:, 0, 1:]


def hints_from(picture: Picture) -> Hints:
    """Hints painted on an image: pixels with alpha above half, or, with no alpha, every pixel but black."""
    width, height = picture.size
    top = _scale(picture)
    rows, cols, ab = [], [], []
    for y in range(0, height, BAND):
        colour = picture.color[y : y + BAND]
        where = picture.alpha[y : y + BAND] > top / 2 if picture.alpha is not None else colour.any(axis=2)
        r, c = np.nonzero(where)
        if len(r):
            rgb = colour[r, c].astype(np.float32) / np.float32(top)
            rows.append(r + y)
            cols.append(c)
            ab.append(ab_of(np.repeat(rgb, 3, axis=1) if rgb.shape[1] == 1 else rgb))
    if not rows:
        return Hints.none(picture.size)
    return Hints(picture.size, np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64),
                 np.concatenate(ab).astype(np.float32))


def parse_colour(text: str) -> np.ndarray:
    """'#RRGGBB' (or 'RRGGBB') -> (3,) sRGB in [0, 1]."""
    match = COLOUR.fullmatch(text.strip())
    if not match:
        raise InputError(f"colour {text!r} is not #RRGGBB (six hexadecimal digits, such as #c0392b)")
    return np.array([int(match[1][i : i + 2], 16) for i in (0, 2, 4)], np.float32) / 255


def hints_at(points: Iterable[tuple[int, int, str]], size: tuple[int, int]) -> Hints:
    """Hints at single pixels: (x, y, '#RRGGBB') each, x and y counted from the top left from 0."""
    points = list(points)
    if not points:
        return Hints.none(size)
    width, height = size
    outside = [(x, y) for x, y, _ in points if not (0 <= x < width and 0 <= y < height)]
    if outside:
        x, y = outside[0]
        raise InputError(f"hint at {x},{y} is outside the {width}x{height} image (x 0-{width - 1}, y 0-{height - 1})")
    rgb = np.stack([parse_colour(c) for _, _, c in points])
    return Hints(size, np.array([y for _, y, _ in points], np.int64), np.array([x for x, _, _ in points], np.int64), ab_of(rgb))


def parse_point(text: str) -> tuple[int, int, str]:
    """'X,Y,#RRGGBB' as the command line's --hint takes it."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 3:
            raise ValueError
        x, y = int(parts[0]), int(parts[1])
    except ValueError:
        raise InputError(f"--hint takes X,Y,#RRGGBB (pixels from the top left, then a colour), not {text!r}") from None
    parse_colour(parts[2])
    return x, y, parts[2]
