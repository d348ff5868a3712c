"""The training loop every model here shares: time-budgeted cosine cycles, EMA, checkpoints, resume.

A run trains for a time budget (`minutes`), one cosine learning-rate cycle per budget, with a short
warm-up. A checkpoint (config inside, written atomically) every `checkpoint_minutes` means a run
stopped at any point resumes where it was; running again after a cycle ended starts a new cycle (a warm
restart) from the weights it left. The exponential moving average of the weights is what gets exported.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from restore.errors import InputError
from restore.training.nets import grown_weights

log = logging.getLogger("restore.train")


@dataclass
class LoopConfig:
    checkpoint: str = "runs/ckpt.pt"
    init: str | None = None  # start from this checkpoint's weights (e.g. the committed slim one) if `checkpoint` does not exist
    minutes: float = 60.0  # length of one learning-rate cycle
    checkpoint_minutes: float = 3.0
    eval_minutes: float = 5.0
    lr: float = 5e-4
    min_lr_ratio: float = 0.01
    warmup_steps: int = 300
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    threads: int = 0  # 0: all cores
    bf16: bool = False  # see low_precision
    # Residual blocks per level to grow `init`'s architecture to (more capacity, new blocks starting as the
    # identity); None keeps the architecture of the checkpoint training starts from.
    grow_blocks: tuple[int, ...] | None = None
    seed: int = 0
    net: dict = field(default_factory=dict)  # the architecture; each trainer gives its default


def low_precision(enabled: bool):
    """bfloat16 autocast for a trainer's model calls (LoopConfig.bf16): about 1.9x the denoiser's steps per
    second on one core of a CPU with AVX512-BF16. Weights, optimizer and evaluation stay float32, and
    trainers turn the outputs back to float32 before their losses: CPU autocast would otherwise leave
    log_softmax and the mask's BCE in bfloat16, where a sigmoid above about 0.998 is exactly 1."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


def lr_at(cfg: LoopConfig, cycle_step: int, cycle_fraction: float) -> float:
    if cycle_step < cfg.warmup_steps:
        return cfg.lr * (cycle_step + 1) / cfg.warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(cycle_fraction, 1.0)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def save_atomic(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_state(cfg: LoopConfig) -> dict | None:
    """The checkpoint to resume from: `checkpoint` if it exists, else `init`, else None (a fresh start)."""
    source = Path(cfg.checkpoint) if Path(cfg.checkpoint).exists() else Path(cfg.init) if cfg.init else None
    if source is None:
        return None
    state = torch.load(source, map_location="cpu", weights_only=False)
    state["source"] = str(source)
    return state


def start(cfg: LoopConfig, build: Callable[[dict], nn.Module]) -> tuple[dict | None, nn.Module, int]:
    """Seed, load the state to resume from (if any) and build the model: (state, model, first step).
    The architecture comes from the checkpoint when there is one, never from the flags."""
    torch.manual_seed(cfg.seed)
    state = load_state(cfg)
    if state is None:
        return None, build(cfg.net), 0
    cfg.net = dict(state["config"]["net"])
    if cfg.grow_blocks and tuple(cfg.grow_blocks) != tuple(cfg.net["blocks"]):
        if Path(state["source"]) != Path(cfg.init or ""):
            raise InputError(f"{state['source']} is a run of its own: grow only from --init, before the run starts")
        if len(cfg.grow_blocks) != len(cfg.net["blocks"]) or any(n < o for n, o in zip(cfg.grow_blocks, cfg.net["blocks"])):
            raise InputError(f"can only add blocks to {tuple(cfg.net['blocks'])}, not make it {tuple(cfg.grow_blocks)}")
        cfg.net["blocks"] = tuple(cfg.grow_blocks)
        model = build(cfg.net)
        # The optimizer's moments and a half-done cycle belong to the smaller model: a fresh cycle starts.
        state = {"ema": grown_weights(model, {k: v.float() for k, v in state["ema"].items()}),
                 "step": state["step"], "history": state.get("history", []), "source": state["source"]}
        log.info("grew %s to %s residual blocks per level", cfg.init, cfg.net["blocks"])
        return state, model, state["step"]
    return state, build(cfg.net), state["step"]


def train_loop(
    cfg: LoopConfig,
    model: nn.Module,
    state: dict | None,
    step_loss: Callable[[nn.Module, int], torch.Tensor],
    evaluate: Callable[[nn.Module], dict] | None = None,
    extra: dict | None = None,
) -> Path:
    """step_loss(model, step) draws a batch and returns its loss; evaluate(ema) returns metrics; extra
    is saved in every checkpoint as it is."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt_path = Path(cfg.checkpoint)
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
        log.info("resumed %s at step %d (cycle %.1f/%.1f min)", state["source"], step, cycle_seconds / 60, cfg.minutes)
    budget = cfg.minutes * 60
    log.info("%s: %.2f M parameters%s", type(model).__name__, sum(p.numel() for p in model.parameters()) / 1e6,
             ", bfloat16 autocast" if cfg.bf16 else "")

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
                **(extra or {}),
            },
            ckpt_path,
        )

    last_ckpt = last_eval = last_log = time.monotonic()
    losses = []
    model.train()
    while cycle_seconds < budget:
        t0 = time.monotonic()
        lr = lr_at(cfg, cycle_step, cycle_seconds / budget)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = step_loss(model, step)
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
        if evaluate is not None and now - last_eval > cfg.eval_minutes * 60:
            metrics = evaluate(ema)
            history.append({"step": step, **metrics})
            log.info("eval step %d  %s", step, json.dumps({k: round(v, 3) for k, v in metrics.items()}))
            last_eval = time.monotonic()
        if now - last_ckpt > cfg.checkpoint_minutes * 60:
            checkpoint()
            last_ckpt = time.monotonic()
    checkpoint()
    if evaluate is not None:
        log.info("final eval step %d  %s", step, json.dumps(evaluate(ema)))
    return ckpt_path
