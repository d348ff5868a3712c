"""Train the blind denoising autoencoder on this CPU (or a GPU), resumably.

Reads top to bottom: config, data, model, the loop. A run trains for a time budget (`minutes`), one
cosine learning-rate cycle per budget; a checkpoint is written every `checkpoint_minutes`, atomically,
with the config inside, so a run stopped at any point resumes where it was. Running again after a cycle
ended starts a new cycle (a warm restart) from the weights it left.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from restore.training.data import CropSampler, add_gaussian_noise, list_images, load_rgb, make_gray
from restore.training.nets import DenoiseUNet, UNetConfig

log = logging.getLogger("restore.train")


@dataclass
class DenoiseTrainConfig:
    data: list[str] = field(default_factory=list)
    val: str | None = None  # folder of clean images for a quick PSNR check (a few centre crops)
    checkpoint: str = "runs/denoise/ckpt.pt"
    init: str | None = None  # start from this checkpoint's weights (e.g. the committed slim one) if `checkpoint` does not exist
    minutes: float = 60.0  # length of one learning-rate cycle
    checkpoint_minutes: float = 3.0
    eval_minutes: float = 5.0
    batch: int = 16
    patch: int = 96
    lr: float = 5e-4
    min_lr_ratio: float = 0.01
    warmup_steps: int = 300
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    sigma_max: float = 55.0  # train a little past 50 so sigma 50 is not at the edge of what the model saw
    p_quantized: float = 0.5  # share of inputs clipped and rounded to 8 bits
    p_gray: float = 0.2  # share of inputs that are gray photos (same noise in all channels)
    threads: int = 0  # 0: all cores
    seed: int = 0
    net: dict = field(default_factory=lambda: asdict(UNetConfig()))


def lr_at(cfg: DenoiseTrainConfig, cycle_step: int, cycle_fraction: float) -> float:
    if cycle_step < cfg.warmup_steps:
        return cfg.lr * (cycle_step + 1) / cfg.warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(cycle_fraction, 1.0)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def to_tensor(batch_u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(batch_u8)).permute(0, 3, 1, 2).float() / 255.0


def load_val(folder: str, size: int = 256, count: int = 8) -> torch.Tensor:
    crops = []
    for path in list_images([Path(folder)])[:count]:
        im = load_rgb(path)
        y, x = (im.shape[0] - size) // 2, (im.shape[1] - size) // 2
        crops.append(im[y : y + size, x : x + size])
    return to_tensor(np.stack(crops))


@torch.no_grad()
def evaluate(model, clean: torch.Tensor) -> dict[str, float]:
    """PSNR at sigma 15/25/50, float noise, fixed seed: comparable across the whole run."""
    model.eval()
    out = {}
    for sigma in (15, 25, 50):
        g = torch.Generator().manual_seed(sigma)
        n = len(clean)
        noisy = add_gaussian_noise(clean, torch.full((n,), float(sigma)), torch.zeros(n, dtype=torch.bool), g)
        den = model(noisy).clamp(0, 1)
        mse = ((den - clean) ** 2).mean(dim=(1, 2, 3))
        out[f"psnr{sigma}"] = float((10 * torch.log10(1 / mse)).mean())
    model.train()
    return out


def save_atomic(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(cfg: DenoiseTrainConfig) -> Path:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt_path = Path(cfg.checkpoint)
    torch.manual_seed(cfg.seed)

    source = ckpt_path if ckpt_path.exists() else Path(cfg.init) if cfg.init else None
    state = torch.load(source, map_location="cpu", weights_only=False) if source else None
    if state is not None:
        cfg.net = state["config"]["net"]  # the architecture comes from the checkpoint, never the flags
    model = DenoiseUNet(UNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.net.items()}))
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    step, cycle_step, cycle_seconds, history = 0, 0, 0.0, []
    if state is not None:
        ema.load_state_dict({k: v.float() for k, v in state["ema"].items()})
        # A slim (committed) checkpoint carries only the EMA weights: training restarts from them.
        model.load_state_dict({k: v.float() for k, v in state.get("model", state["ema"]).items()})
        if "opt" in state:
            opt.load_state_dict(state["opt"])
        step, history = state["step"], state.get("history", [])
        cycle = state.get("cycle", {})
        if cycle.get("seconds", 0.0) < cycle.get("budget", 0.0):  # the last cycle was cut short: finish it
            cycle_step, cycle_seconds = cycle["step"], cycle["seconds"]
            cfg.minutes = cycle["budget"] / 60
        log.info("resumed %s at step %d (cycle %.1f/%.1f min)", source, step, cycle_seconds / 60, cfg.minutes)
    budget = cfg.minutes * 60

    sampler = CropSampler([Path(d) for d in cfg.data], cfg.patch, seed=cfg.seed + step)
    val = load_val(cfg.val) if cfg.val else None
    gen = torch.Generator().manual_seed(cfg.seed + step)
    log.info("model %s: %.2f M parameters; %d training images", cfg.net, sum(p.numel() for p in model.parameters()) / 1e6, len(sampler.images))

    def checkpoint():
        save_atomic(
            {
                "config": asdict(cfg),
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "opt": opt.state_dict(),
                "step": step,
                "cycle": {"step": cycle_step, "seconds": cycle_seconds, "budget": budget},
                "history": history,
            },
            ckpt_path,
        )

    last_ckpt = last_eval = last_log = time.monotonic()
    losses = []
    while cycle_seconds < budget:
        t0 = time.monotonic()
        clean = to_tensor(sampler.batch(cfg.batch))
        n = clean.shape[0]
        gray = torch.rand(n, generator=gen) < cfg.p_gray
        clean = make_gray(clean, gray)
        sigma = torch.rand(n, generator=gen) * cfg.sigma_max
        noisy = add_gaussian_noise(clean, sigma, torch.rand(n, generator=gen) < cfg.p_quantized, gen, gray)

        lr = lr_at(cfg, cycle_step, cycle_seconds / budget)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = F.l1_loss(model(noisy), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - cfg.ema_decay)
        losses.append(loss.item())
        step += 1
        cycle_step += 1
        cycle_seconds += time.monotonic() - t0

        now = time.monotonic()
        if now - last_log > 60:
            log.info("step %d  loss %.5f  lr %.2e  cycle %.1f/%.1f min", step, np.mean(losses), lr, cycle_seconds / 60, budget / 60)
            losses, last_log = [], now
        if val is not None and now - last_eval > cfg.eval_minutes * 60:
            metrics = evaluate(ema, val)
            history.append({"step": step, **metrics})
            log.info("eval step %d  %s", step, json.dumps({k: round(v, 3) for k, v in metrics.items()}))
            last_eval = time.monotonic()
        if now - last_ckpt > cfg.checkpoint_minutes * 60:
            checkpoint()
            last_ckpt = time.monotonic()
    checkpoint()
    if val is not None:
        log.info("final eval step %d  %s", step, json.dumps(evaluate(ema, val)))
    return ckpt_path
