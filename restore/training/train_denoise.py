"""Train the blind denoising autoencoder: random crops of clean photos, degraded by the realistic mix of
restore.training.degrade (camera noise through a simulated camera, JPEG, correlated noise, grain and
the benchmarks' i.i.d. Gaussian noise), so one model serves all of them.

The loop itself (cycles, EMA, checkpoints, resume) is restore.training.loop; this module says what a
batch is, what the loss is, and how progress is checked.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from restore.training.data import CropSampler, list_images, load_rgb
from restore.training.degrade import Mix, degrade, gaussian
from restore.training.loop import LoopConfig, low_precision, start, train_loop
from restore.training.nets import DenoiseUNet, UNetConfig

JPEG_BLOCK = 8  # crops are degraded with this much margin, then cut at a random offset: JPEG's grid moves
# The balancing weight's mean over Gaussian noise of sigma U(0, 55): dividing by this constant (not by each
# batch's own mean) keeps a Gaussian crop's weight what it was when the model learnt Gaussian noise alone,
# so the low-noise crops of the mix add to training rather than dilute what the Gaussian ones teach.
BALANCE_MEAN = 30.0 * float(np.log(60.0 / 5.0)) / 55.0


@dataclass
class DenoiseTrainConfig(LoopConfig):
    checkpoint: str = "runs/denoise/ckpt.pt"
    data: list[str] = field(default_factory=list)
    val: str | None = None  # folder of clean images for a quick Gaussian check (a few centre crops)
    val_real: str | None = None  # folder of NAME_real / NAME_mean pairs (real camera noise) for a check
    batch: int = 16
    patch: int = 96
    mix: dict = field(default_factory=lambda: asdict(Mix()))
    # Per-crop L1 weighted by (25 + 5) / (s + 5), s being the crop's own noise level (the standard deviation of
    # noisy - target, 0-255 scale): the error a denoiser leaves grows with the noise, so an unweighted mean lets
    # the noisiest crops drive training and the low levels, where real photos are, lag.
    balance_noise: bool = True
    net: dict = field(default_factory=lambda: asdict(UNetConfig()))


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 or float in [0, 1] -> (N, 3, H, W) float32."""
    x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float()
    return x / 255.0 if batch.dtype == np.uint8 else x


def degraded_batch(crops_u8: np.ndarray, patch: int, mix: Mix, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of patch + JPEG_BLOCK pixels -> (noisy, target), each (N, 3, patch, patch), degraded one by one."""
    noisy, target = [], []
    for crop in crops_u8:
        x, y, _ = degrade(crop.astype(np.float32) / 255, rng, mix)
        oy, ox = rng.integers(JPEG_BLOCK + 1, size=2)
        noisy.append(x[oy : oy + patch, ox : ox + patch])
        target.append(y[oy : oy + patch, ox : ox + patch])
    return to_tensor(np.stack(noisy)), to_tensor(np.stack(target))


def load_val(folder: str, size: int = 256, count: int = 8) -> torch.Tensor:
    crops = []
    for path in list_images([Path(folder)])[:count]:
        im = load_rgb(path)
        y, x = (im.shape[0] - size) // 2, (im.shape[1] - size) // 2
        crops.append(im[y : y + size, x : x + size])
    return to_tensor(np.stack(crops))


def load_real_pairs(folder: str, size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre crops of every NAME_real / NAME_mean pair: (noisy, ground truth)."""
    from restore.bench.denoise import real_pairs

    def centre(path):
        im = load_rgb(path)
        y, x = (im.shape[0] - size) // 2, (im.shape[1] - size) // 2
        return im[y : y + size, x : x + size]

    pairs = real_pairs(Path(folder))
    return to_tensor(np.stack([centre(n) for n, _ in pairs])), to_tensor(np.stack([centre(m) for _, m in pairs]))


def _psnr(out: torch.Tensor, truth: torch.Tensor) -> float:
    mse = ((out.clamp(0, 1) - truth) ** 2).mean(dim=(1, 2, 3))
    return float((10 * torch.log10(1 / mse)).mean())


@torch.no_grad()
def evaluate(model, clean: torch.Tensor | None, real: tuple[torch.Tensor, torch.Tensor] | None, chunk: int = 8) -> dict[str, float]:
    """PSNR at sigma 15/25/50 (float noise, fixed seed) and on the real-noise pairs: comparable across the run."""
    model.eval()
    out = {}
    run = lambda x: torch.cat([model(part) for part in x.split(chunk)])  # noqa: E731
    if clean is not None:
        images = clean.permute(0, 2, 3, 1).numpy()
        for sigma in (15, 25, 50):
            rng = np.random.default_rng(sigma)
            noisy = to_tensor(np.stack([gaussian(im, sigma, False, rng) for im in images]))
            out[f"psnr{sigma}"] = _psnr(run(noisy), clean)
    if real is not None:
        out["psnr_real"] = _psnr(run(real[0]), real[1])
    model.train()
    return out


def build_model(net: dict) -> DenoiseUNet:
    return DenoiseUNet(UNetConfig.from_dict(net))


def train(cfg: DenoiseTrainConfig) -> Path:
    state, model, step0 = start(cfg, build_model)
    sampler = CropSampler([Path(d) for d in cfg.data], cfg.patch + JPEG_BLOCK, seed=cfg.seed + step0)
    rng = np.random.default_rng(cfg.seed + step0 + 1)
    mix = Mix(**cfg.mix)
    val = load_val(cfg.val) if cfg.val else None
    real = load_real_pairs(cfg.val_real) if cfg.val_real else None

    def step_loss(model, step):
        noisy, target = degraded_batch(sampler.batch(cfg.batch), cfg.patch, mix, rng)
        with low_precision(cfg.bf16):
            denoised = model(noisy)
        per_crop = (denoised.float() - target).abs().mean(dim=(1, 2, 3))
        if cfg.balance_noise:
            level = (noisy - target).flatten(1).std(dim=1) * 255
            per_crop = per_crop * (30.0 / (level + 5.0)) / BALANCE_MEAN
        return per_crop.mean()

    checks = (lambda ema: evaluate(ema, val, real)) if val is not None or real is not None else None
    return train_loop(cfg, model, state, step_loss, checks)
