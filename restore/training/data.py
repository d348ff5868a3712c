"""Training data: the photos, held in memory, and random crops of them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def list_images(folders: list[Path]) -> list[Path]:
    paths = sorted(p for d in folders for p in Path(d).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {', '.join(map(str, folders))}")
    return paths


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def shrink(image: np.ndarray, long_side: int) -> np.ndarray:
    """Scale down (area-averaged) so the long side is at most long_side."""
    h, w = image.shape[:2]
    if max(h, w) <= long_side:
        return image
    scale = long_side / max(h, w)
    return np.asarray(Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.Resampling.BOX))


class CropSampler:
    """All images held in memory as uint8 (CBSD432 is about 200 MB); batches of random crops with flips
    and, unless rotate is off (colour depends on which way is up), quarter turns. long_side: shrink each
    image first, so crops see objects at the scale a model works at."""

    def __init__(self, folders: list[Path], patch: int, seed: int = 0, long_side: int | None = None, rotate: bool = True):
        images = map(load_rgb, list_images(folders))
        if long_side:
            images = (shrink(im, long_side) for im in images)
        self.images = [im for im in images if min(im.shape[:2]) >= patch]
        if not self.images:
            raise ValueError(f"no image is at least {patch} px on its short side")
        self.patch, self.rotate = patch, rotate
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> np.ndarray:
        """(n, patch, patch, 3) uint8."""
        out = np.empty((n, self.patch, self.patch, 3), np.uint8)
        for i in range(n):
            im = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(im.shape[0] - self.patch + 1)
            x = self.rng.integers(im.shape[1] - self.patch + 1)
            crop = im[y : y + self.patch, x : x + self.patch]
            if self.rotate:
                crop = np.rot90(crop, self.rng.integers(4))
            out[i] = crop[:, ::-1] if self.rng.random() < 0.5 else crop
        return out
