"""Train the watermark-removal autoencoder: clean photos, synthetic watermarks drawn on the fly.

Watermarks are drawn over the whole photo (so their size is relative to the photo, as real ones are)
and then cropped, most crops centred on a marked pixel, some on clean photos so the model learns to
leave an unmarked image alone. On a share of crops the model is also given a hint, a coarse copy of
the true mask, as a user's brushed mask would be; otherwise the hint is zeros (the blind case).
Loss: L1 of the composite against the clean photo, binary cross entropy plus soft Dice of the mask
against the true one (alpha above half an 8-bit step; Dice because marked pixels are about a tenth of a
crop, and cross entropy alone is content to predict "no mark" for faint ones), L1 of the composite
inside the true mask and outside it, each over its own pixels (so repainting a mark and leaving the rest
alone weigh alike), and L1 of the pixel head everywhere, so the pixels are sound wherever a user's
hint may point.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from restore.training.data import list_images, load_rgb
from restore.training.loop import LoopConfig, low_precision, start, train_loop
from restore.training.nets import UNetConfig, WatermarkUNet
from restore.training.watermarks import WatermarkSynth, find_fonts

MASK_LEVEL = 0.5 / 255  # alpha above this changes an 8-bit pixel: that is "watermarked"


@dataclass
class DewatermarkTrainConfig(LoopConfig):
    checkpoint: str = "runs/dewatermark/ckpt.pt"
    data: list[str] = field(default_factory=list)
    val: str | None = None  # a folder written by write_validation_set
    fonts: list[str] = field(default_factory=list)  # default: the DejaVu family (TRAINING_FONTS)
    logos: list[str] = field(default_factory=list)
    # Half the procedural logos filled: a model trained on outlines alone finds filled pictograms it has
    # not seen (samples/logos) poorly (`restore bench dewatermark --logos samples/logos`).
    fill_share: float = 0.5
    turn_share: float = 0.1  # marks turned a quarter (WatermarkSynth.turn_share)
    batch: int = 5
    patch: int = 192  # wide crops: each sees the photo around a mark
    # The mask's cross entropy and Dice weigh as much as the pixels: the mask decides which pixels change,
    # and a missed mark costs more than an imperfect repaint.
    mask_weight: float = 1.0
    pixel_weight: float = 0.1
    p_clean: float = 0.1
    p_hint: float = 0.3
    dice_weight: float = 1.0
    # L1 inside the true mask, over the marked pixels only: they are about a tenth of a crop, so in the
    # whole-crop L1 their repainting would weigh little.
    inside_weight: float = 1.0
    # The same outside it, over the unmarked pixels: with the inside term alone the model grows bolder
    # everywhere and changes pixels far from any mark.
    outside_weight: float = 1.0
    # Five levels, narrower: half the time per step of the denoiser's four (0.49 vs 1.02 s for 12 crops of
    # 128 px on one core) and a receptive field twice as wide, which finding a faint mark needs.
    net: dict = field(default_factory=lambda: asdict(UNetConfig(in_channels=4, widths=(32, 64, 128, 256, 256), blocks=(1, 1, 1, 1, 2))))


def build_model(net: dict) -> WatermarkUNet:
    return WatermarkUNet(UNetConfig.from_dict(net))


class MarkedCrops:
    """Batches of (marked, clean, true mask) crops, each (N, C, patch, patch) float in [0, 1]."""

    def __init__(self, folders: list[Path], synth: WatermarkSynth, patch: int, p_clean: float, seed: int):
        self.images = [im for im in map(load_rgb, list_images(folders)) if min(im.shape[:2]) >= patch and im.shape[2] == 3]
        self.synth, self.patch, self.p_clean = synth, patch, p_clean
        self.rng = np.random.default_rng(seed)

    def one(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image = self.images[self.rng.integers(len(self.images))].astype(np.float32) / 255
        h, w, p = image.shape[0], image.shape[1], self.patch
        if self.rng.random() < self.p_clean:
            marked, alpha = image, np.zeros((h, w), np.float32)
        else:
            marked, alpha = self.synth.apply(image, self.rng)
            marked = np.round(marked * 255) / 255  # watermarked files are 8-bit
        hits = np.argwhere(alpha > MASK_LEVEL)
        if len(hits) and self.rng.random() < 0.8:  # centre most crops on the watermark
            cy, cx = hits[self.rng.integers(len(hits))]
            y, x = int(np.clip(cy - p // 2, 0, h - p)), int(np.clip(cx - p // 2, 0, w - p))
        else:
            y, x = int(self.rng.integers(h - p + 1)), int(self.rng.integers(w - p + 1))
        crop = (slice(y, y + p), slice(x, x + p))
        return marked[crop], image[crop], (alpha[crop] > MASK_LEVEL).astype(np.float32)

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        marked, clean, mask = zip(*(self.one() for _ in range(n)))
        to = lambda a: torch.from_numpy(np.ascontiguousarray(np.stack(a))).float()  # noqa: E731
        return to(marked).permute(0, 3, 1, 2), to(clean).permute(0, 3, 1, 2), to(mask)[:, None]


def write_validation_set(source: Path, out: Path, synth: WatermarkSynth, seed: int = 0) -> int:
    """clean/, marked/ (8-bit PNG) and mask/ (alpha as 8-bit PNG) for every image in source; seeded."""
    for sub in ("clean", "marked", "mask"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    paths = list_images([source])
    for i, path in enumerate(paths):
        image = load_rgb(path)
        marked, alpha = synth.apply(image.astype(np.float32) / 255, np.random.default_rng(seed + i))
        name = path.stem + ".png"
        Image.fromarray(image).save(out / "clean" / name)
        Image.fromarray(np.round(marked * 255).astype(np.uint8)).save(out / "marked" / name)
        Image.fromarray(np.round(alpha * 255).astype(np.uint8)).save(out / "mask" / name)
    return len(paths)


def load_val(folder: str, multiple: int, count: int = 32, size: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centre crops of the first `count` images big enough for the model: a side that is a multiple of
    `multiple` (the model's stride), at most `size`."""
    root = Path(folder)
    sides = {p.name: min(Image.open(p).size) for p in sorted((root / "clean").glob("*.png"))}
    names = [n for n, side in sides.items() if side >= multiple][:count]
    if not names:
        raise ValueError(f"no validation image in {root / 'clean'} is at least {multiple} px on its short side")
    size = min(size, *(sides[n] for n in names)) // multiple * multiple

    def crop(sub, n):
        im = np.asarray(Image.open(root / sub / n), dtype=np.float32) / 255
        y, x = (im.shape[0] - size) // 2, (im.shape[1] - size) // 2
        return im[y : y + size, x : x + size]
    marked = torch.from_numpy(np.stack([crop("marked", n) for n in names])).permute(0, 3, 1, 2)
    clean = torch.from_numpy(np.stack([crop("clean", n) for n in names])).permute(0, 3, 1, 2)
    mask = torch.from_numpy(np.stack([crop("mask", n) for n in names]))[:, None] > MASK_LEVEL
    return marked, clean, mask


# How far a user's mask overshoots the mark, in pixels: (share of hints, smallest, largest). From exact to a
# loose brush, so that any mask a user paints helps rather than hurts (the bench's rows "given the true mask"
# and "given a mask 8 px loose").
HINT_GROWTH = ((0.2, 0, 0), (0.4, 1, 4), (0.4, 5, 24))


def coarse_hint(mask: torch.Tensor, use: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A user's mask, on the chosen rows (zeros elsewhere): the true mask exactly, or grown as a brush
    would by a few pixels, or loosely by up to 24 (HINT_GROWTH), per crop."""
    shares = torch.tensor([share for share, _, _ in HINT_GROWTH])
    hints = []
    for one, on in zip(mask, use):
        low, high = HINT_GROWTH[int(torch.multinomial(shares, 1, generator=generator))][1:]
        grow = int(torch.randint(low, high + 1, (1,), generator=generator))
        if grow:  # a square brush, as two separable passes
            one = F.max_pool2d(one[None], (2 * grow + 1, 1), stride=1, padding=(grow, 0))
            one = F.max_pool2d(one, (1, 2 * grow + 1), stride=1, padding=(0, grow))[0]
        hints.append(one * float(on))
    return torch.stack(hints)


@torch.no_grad()
def evaluate(model, val, chunk: int = 8) -> dict[str, float]:
    """Blind: the hint is zeros, as for a user who gives only the photo. Per-crop means, as the bench
    takes per-image means (eight crops tracked the bench poorly: validation fell while the bench rose)."""
    model.eval()
    psnrs, f1s = [], []
    for marked, clean, mask in zip(*(t.split(chunk) for t in val)):
        out, pred, _ = model(marked, torch.zeros_like(marked[:, :1]))
        # A crop with no mark in it that comes back untouched scores infinity: cap it at 100 dB.
        mse = ((out.clamp(0, 1) - clean) ** 2).mean(dim=(1, 2, 3)).clamp(min=1e-10)
        psnrs.append(10 * torch.log10(1 / mse))
        hit = pred > 0.5
        tp = (hit & mask).sum(dim=(1, 2, 3))
        both = hit.sum(dim=(1, 2, 3)) + mask.sum(dim=(1, 2, 3))
        f1s.append(torch.where(both > 0, 2 * tp / both.clamp(min=1), 1.0))  # nothing to find, none found: right
    model.train()
    return {"psnr": float(torch.cat(psnrs).mean()), "mask_f1": float(torch.cat(f1s).float().mean())}


def train(cfg: DewatermarkTrainConfig) -> Path:
    state, model, step0 = start(cfg, build_model)
    synth = WatermarkSynth(find_fonts([Path(f) for f in cfg.fonts] or None), logos=[Path(p) for p in cfg.logos],
                           fill_share=cfg.fill_share, turn_share=cfg.turn_share)
    crops = MarkedCrops([Path(d) for d in cfg.data], synth, cfg.patch, cfg.p_clean, cfg.seed + step0)
    val = load_val(cfg.val, model.config.stride) if cfg.val else None
    gen = torch.Generator().manual_seed(cfg.seed + step0)

    def step_loss(model, step):
        marked, clean, mask = crops.batch(cfg.batch)
        hint = coarse_hint(mask, torch.rand(len(mask), generator=gen) < cfg.p_hint, gen)
        with low_precision(cfg.bf16):
            outputs = model(marked, hint)
        out, pred, pixels = (t.float() for t in outputs)
        # Per crop, as the bench scores F1 per photo: a crop with a small mark weighs as much as one with
        # a big mark, and any mark found on a clean crop costs.
        dims = (1, 2, 3)
        dice = (1 - (2 * (pred * mask).sum(dims) + 1) / (pred.sum(dims) + mask.sum(dims) + 1)).mean()
        error = (out - clean).abs()
        inside = (error * mask).sum() / (3 * mask.sum() + 1)
        outside = (error * (1 - mask)).sum() / (3 * (1 - mask).sum() + 1)
        return (F.l1_loss(out, clean) + cfg.inside_weight * inside + cfg.outside_weight * outside
                + cfg.mask_weight * F.binary_cross_entropy(pred.clamp(1e-6, 1 - 1e-6), mask)
                + cfg.dice_weight * dice + cfg.pixel_weight * F.l1_loss(pixels, clean))

    return train_loop(cfg, model, state, step_loss, (lambda ema: evaluate(ema, val)) if val is not None else None)
