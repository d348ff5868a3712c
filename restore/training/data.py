"""Training data: random crops of clean photos, and the synthetic noise the denoiser learns to remove."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
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


def add_gaussian_noise(
    clean: torch.Tensor,
    sigma: torch.Tensor,
    quantize: torch.Tensor,
    generator: torch.Generator | None = None,
    gray: torch.Tensor | None = None,
) -> torch.Tensor:
    """clean: (N, C, H, W) in [0, 1]; sigma: (N,) on the 0-255 scale; quantize, gray: (N,) bool.

    Quantized rows are clipped and rounded to 8 bits, as users' files are; the others keep float,
    unclipped noise, as the published benchmark tables do. Training on both serves both. Gray rows
    get one noise field copied into every channel: a gray photo is served as three equal channels.
    """
    noise = torch.randn(clean.shape, generator=generator)
    if gray is not None:
        noise = torch.where(gray.view(-1, 1, 1, 1), noise[:, :1].expand_as(noise), noise)
    noisy = clean + noise * (sigma / 255.0).view(-1, 1, 1, 1)
    q = quantize.view(-1, 1, 1, 1)
    return torch.where(q, torch.round(noisy.clamp(0, 1) * 255) / 255, noisy)


def make_gray(images: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Replace the chosen rows by their luma copied into all three channels (how gray photos are served)."""
    luma = (images * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return torch.where(rows.view(-1, 1, 1, 1), luma.expand_as(images), images)
