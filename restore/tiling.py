"""Overlapping tiles with feathered blending, so memory is bounded for any image size.

Mechanism only: `tiled_run(image, fn, tiler)` cuts, runs and blends. Policy (how big a tile may be)
lives in `tile_for_budget`. The blend weights are separable ramps that sum to one over the tile grid,
so the image is built one band of tile rows at a time: peak memory is the input, the output, and
one band of float32 rows, whatever the image's size.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TileFn = Callable[[np.ndarray], np.ndarray]  # (1, C, h, w) float32 -> (1, C_out, h, w) float32


@dataclass(frozen=True)
class Tiler:
    tile: int = 512  # largest tile side, a multiple of `multiple`
    overlap: int = 32  # pixels shared by neighbouring tiles, blended with a linear ramp
    multiple: int = 1  # the model's stride: each tile is padded (reflect) up to a multiple of it

    def __post_init__(self):
        if self.tile % self.multiple or self.tile <= 2 * self.overlap:
            raise ValueError(f"tile {self.tile} must be a multiple of {self.multiple} and larger than twice the overlap {self.overlap}")


def tile_for_budget(budget_bytes: int, bytes_per_pixel: float, multiple: int, largest: int) -> int:
    """The largest tile side (a multiple of `multiple`, at most `largest`) whose activations fit the budget."""
    side = int((budget_bytes / bytes_per_pixel) ** 0.5) // multiple * multiple
    return max(multiple, min(largest // multiple * multiple, side))


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile start offsets covering [0, length): evenly spread, each neighbour pair overlapping >= overlap."""
    if length <= tile:
        return [0]
    count = -(-(length - overlap) // (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def fitted(length: int, tile: int, overlap: int, multiple: int) -> int:
    """The smallest tile side (a multiple of `multiple`, at most `tile`) that covers `length` with as
    few tiles as `tile` needs: 2048 px in tiles of 512 overlapping by 32 takes 5, and 5 of 448 do, so
    the model runs on 5.0 rather than 6.6 megapixels for a 2048 x 2048 photo."""
    if length <= tile:
        return tile
    count = -(-(length - overlap) // (tile - overlap))
    side = -(-(length + (count - 1) * overlap) // count)
    return min(tile, -(-side // multiple) * multiple)


def ramps(length: int, tile: int, offsets: list[int]) -> list[np.ndarray]:
    """Per-tile 1-D weights that sum to one at every position: linear ramps across each overlap."""
    weights = []
    for i, s in enumerate(offsets):
        size = min(tile, length - s)
        w = np.ones(size, np.float32)
        if i > 0:  # ramp up across the overlap with the previous tile
            ov = offsets[i - 1] + tile - s
            w[:ov] = (np.arange(ov, dtype=np.float32) + 0.5) / ov
        if i < len(offsets) - 1:  # ramp down across the overlap with the next tile
            ov = s + size - offsets[i + 1]
            w[size - ov :] = np.minimum(w[size - ov :], (ov - np.arange(ov, dtype=np.float32) - 0.5) / ov)
        weights.append(w)
    total = np.zeros(length, np.float32)
    for s, w in zip(offsets, weights):
        total[s : s + len(w)] += w
    return [w / total[s : s + len(w)] for s, w in zip(offsets, weights)]


def _pad_run(fn: TileFn, tile: np.ndarray, multiple: int) -> np.ndarray:
    """Run fn on an (h, w, C) float tile padded up to a multiple of the model stride, cropped back."""
    h, w = tile.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    x = np.pad(tile, ((0, ph), (0, pw), (0, 0)), mode="symmetric") if ph or pw else tile
    y = fn(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
    return y[0, :, :h, :w].transpose(1, 2, 0)


def _scale(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def tiled_run(
    image: np.ndarray,
    fn: TileFn,
    tiler: Tiler,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Apply fn to an (H, W, C) image tile by tile. The result is (H, W, C_out) in the image's dtype,
    C_out being what fn returns (C for a restored image, more when a model adds a mask).

    Integer images are scaled to [0, 1] per tile and the result rounded and clipped back, so the
    full-size float copy of a 50-megapixel photo is never made.
    """
    height, width, _ = image.shape
    if min(height, width) < tiler.multiple and max(height, width) > tiler.tile:
        return _folded(image, fn, tiler, progress)
    scale = _scale(image.dtype)
    # A tile's memory is its area: a short image gets tiles as much wider as it is shorter (and a narrow
    # one taller), so a strip is not cut into many small tiles that each pay the model's fixed costs.
    th = fitted(height, tiler.tile, tiler.overlap, tiler.multiple)
    tw = fitted(width, _longer(tiler, min(th, _padded(height, tiler.multiple))), tiler.overlap, tiler.multiple)
    if tw < tiler.tile:
        th = fitted(height, _longer(tiler, min(tw, _padded(width, tiler.multiple))), tiler.overlap, tiler.multiple)
    ys, xs = starts(height, th, tiler.overlap), starts(width, tw, tiler.overlap)
    wy, wx = ramps(height, th, ys), ramps(width, tw, xs)
    out: np.ndarray | None = None  # allocated once the first tile says how many channels come out
    band: np.ndarray | None = None  # float rows [band_top, band_top + len(band)) not yet final
    band_top, done, total = 0, 0, len(ys) * len(xs)
    for y, w_row in zip(ys, wy):
        h = len(w_row)
        row = None
        for x, w_col in zip(xs, wx):
            tile = image[y : y + h, x : x + len(w_col)].astype(np.float32) / scale
            result = _pad_run(fn, tile, tiler.multiple)
            if out is None:
                out = np.empty((height, width, result.shape[2]), image.dtype)
            if row is None:
                row = np.zeros((h, width, result.shape[2]), np.float32)
            row[:, x : x + len(w_col)] += result * w_col[None, :, None]
            done += 1
            if progress:
                progress(done, total)
        row *= w_row[:, None, None]
        if band is None:
            band, band_top = row, y
        else:  # rows above y are final: write them out, keep the overlap and add this row of tiles
            keep = band[y - band_top :]
            _emit(out, band[: y - band_top], band_top, scale)
            row[: len(keep)] += keep
            band, band_top = row, y
    _emit(out, band, band_top, scale)
    return out


def _padded(length: int, multiple: int) -> int:
    return -(-length // multiple) * multiple


def _longer(tiler: Tiler, other: int) -> int:
    """The longest tile side (a multiple of the stride) whose area, beside a side of `other`, is a square tile's."""
    return max(tiler.tile, tiler.tile * tiler.tile // max(other, 1) // tiler.multiple * tiler.multiple)


def _folded(image: np.ndarray, fn: TileFn, tiler: Tiler, progress) -> np.ndarray:
    """A strip thinner than the model's stride, cut into overlapping pieces stacked into a block at least
    a stride tall, run as one image and put back. Padded instead, each strip pixel would cost the model
    stride / thickness pixels (16 for a 1-pixel strip); stacked, about one."""
    turned = image.shape[0] > image.shape[1]
    strip = image.transpose(1, 0, 2) if turned else image  # (h, W, C), h < stride
    h, W, _ = strip.shape
    o = tiler.overlap
    # As many pieces as make the block's padded height and the pieces' overlaps cost the least.
    pieces = min(range(-(-tiler.multiple // h), 4 * tiler.multiple + 1), key=lambda p: _padded(h * p, tiler.multiple) * (-(-W // p) + 2 * o))
    length = -(-W // pieces)
    padded = np.pad(strip, ((0, 0), (o, pieces * length - W + o), (0, 0)), mode="symmetric")
    block = np.concatenate([padded[:, j * length : j * length + length + 2 * o] for j in range(pieces)], axis=0)
    done = tiled_run(block, fn, tiler, progress)
    out = np.concatenate([done[j * h : (j + 1) * h, o : o + length] for j in range(pieces)], axis=1)[:, :W]
    return np.ascontiguousarray(out.transpose(1, 0, 2) if turned else out)


def _emit(out: np.ndarray, rows: np.ndarray, top: int, scale: float) -> None:
    """Write finished float rows into out. In place: rows are a band's worth and never read again."""
    if np.issubdtype(out.dtype, np.integer):
        rows *= scale
        np.rint(rows, out=rows)
        np.clip(rows, 0, scale, out=rows)
    out[top : top + len(rows)] = rows
