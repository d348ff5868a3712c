"""Train the colorization VAE (or, with latent = 0, the deterministic autoencoder it is compared with).

Photos are shrunk so the long side is the working size (as serving does), then cropped and flipped
(never rotated: colour depends on which way is up). Gray photos in the data are skipped.

Loss, per ab pixel at a quarter of the crop size:
- reconstruction: cross entropy between the predicted distribution over ab bins and a soft target (a
  Gaussian, sigma 5 ab units, around the true ab; Zhang et al. 2016). A distribution, not a regressed
  mean: regressing ab averages the plausible colours towards gray, which is what makes colorizers look
  washed out; serving decodes the distribution by its (annealed) mean, which stays vivid.
  Each pixel's term is weighted by how rare its colour is (Zhang et al.'s class rebalancing: the inverse
  of the smoothed colour prior mixed half-and-half with a uniform one): photos are mostly gray-brown, and
  unweighted, the distribution - and so its annealed mean - stays dull, and duller as it trains.
  Weighting the loss by w multiplies the learnt distribution by w, so how much of it serving keeps is a
  dial: the exported model's logits are shifted by log w(SERVED_REBALANCE) - log w(rebalance) (see
  prior_shift), which is what training with SERVED_REBALANCE would give, without training again.
- KL divergence of q(z | L, ab) from N(0, I), summed over the latent and divided by the number of ab
  pixels (so weight 1 is the true evidence lower bound per pixel), times a weight that rises linearly from
  0 to kl_weight over the first kl_warmup steps (Bowman et al. 2016): with the KL at full weight from the
  start, the decoder learns to ignore z before z has learnt anything, and every sample comes out alike.
- z = 0 for a share (p_zero) of each batch, the posterior's draw for the rest: the decoder learns that
  z = 0 means "nothing known beyond L", so the default sample is the rebalanced prediction a
  deterministic autoencoder makes, and stays vivid. Without it the decoder leaves all colour to z, and the
  z = 0 colouring comes out nearly gray.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from restore.color import ab_bins, colourfulness, lab_to_rgb_keep_lightness, rgb_to_lab
from restore.tasks.colorize import AB_SCALE, annealed_mean  # ab / AB_SCALE: what the posterior and the hint inputs see
from restore.training.data import CropSampler, list_images, load_rgb, shrink
from restore.training.loop import LoopConfig, low_precision, start, train_loop
from restore.training.nets import ColorConfig, ColorVAE, grown_weights

log = logging.getLogger("restore.train")

# The annealed mean's temperature, used in evaluation and serving: 1, the plain mean. Trained with class
# rebalancing, the model is vivid already: on CBSD68 its z = 0 colouring has colourfulness 35.2 at T = 1
# (truth 37.5) and overshoots to 40.4 at Zhang et al.'s 0.38, losing 0.6 dB.
TEMPERATURE = 1.0
# The rebalancing the served model decodes with (the uniform share; training uses `rebalance`, 0.5): 1 would
# be none. 0.8 keeps the default colourings' colourfulness within 10 of the photos' own; the overall colour
# of each colouring comes from the distribution without rebalancing, sharpened by MEAN_TEMPERATURE
# (restore.tasks.colorize.decode), which keeps rebalancing's vivid local colour without its warm cast
# (`restore bench colorize` reports both).
SERVED_REBALANCE = 0.8
MEAN_TEMPERATURE = 0.6


@dataclass
class ColorizeTrainConfig(LoopConfig):
    checkpoint: str = "runs/colorize/ckpt.pt"
    data: list[str] = field(default_factory=list)
    val: str | None = None  # folder of colour photos for a quick check
    batch: int = 32
    patch: int = 64
    # The long side photos are shrunk to, in training and in serving. 128 (crops of 64): colour is smooth,
    # the full-size L carries the detail, and a step costs a quarter of what 256 does.
    working_size: int = 128
    # 1: the evidence lower bound. With one z per photo, z still carries a colour scheme at that weight
    # (tens of nats per 128-px photo).
    kl_weight: float = 1.0
    kl_warmup: int = 1000
    p_zero: float = 0.5  # share of each batch decoded at z = 0 (see the module's docstring)
    rebalance: float = 0.5  # the uniform share in the rebalancing prior; 1 turns rebalancing off
    soft_sigma: float = 5.0
    min_chroma: float = 3.0  # mean |ab| below this: a gray photo, skipped
    hints: bool = True  # train with simulated colour hints (a model without them is grown to take them)
    hint_draw: dict = field(default_factory=lambda: asdict(HintDraw()))
    net: dict = field(default_factory=lambda: asdict(ColorConfig(hints=True)))


def build_model(net: dict) -> ColorVAE:
    return ColorVAE(ColorConfig.from_dict(net))


def lab_batch(rgb_u8: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, H, W, 3) uint8 -> L / 100 (N, 1, H, W) and ab (N, 2, H, W) in ab units."""
    lab = torch.from_numpy(rgb_to_lab(rgb_u8.astype(np.float32) / 255)).permute(0, 3, 1, 2)
    return lab[:, :1] / 100, lab[:, 1:]


def soft_targets(ab: torch.Tensor, bins: torch.Tensor, sigma: float) -> torch.Tensor:
    """ab (N, 2, h, w) -> (N, Q, h, w) weights: a Gaussian around each pixel's ab over the bin centres."""
    d2 = ((ab[:, None] - bins[None, :, :, None, None]) ** 2).sum(dim=2)
    return torch.softmax(-d2 / (2 * sigma**2), dim=1)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per image, summed over the latent: KL(N(mu, exp(logvar)) || N(0, I))."""
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1)


def nearest_bin(ab: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """(N, 2, h, w) ab -> (N, h, w) index of the nearest bin."""
    return ((ab[:, None] - bins[None, :, :, None, None]) ** 2).sum(dim=2).argmin(dim=1)


def colour_prior(images: list[np.ndarray], bins: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """(Q,) how often each ab bin occurs in the images, smoothed by a Gaussian over ab; sums to 1."""
    counts = torch.zeros(len(bins))
    for im in images:
        _, ab = lab_batch(im[None, ::4, ::4])
        counts += torch.bincount(nearest_bin(ab, bins).flatten(), minlength=len(bins)).float()
    d2 = ((bins[:, None] - bins[None]) ** 2).sum(-1)
    p = torch.exp(-d2 / (2 * sigma**2)) @ (counts / counts.sum())
    return p / p.sum()


def rebalancing_weights(prior: torch.Tensor, uniform: float) -> torch.Tensor:
    """(Q,) weight per bin: 1 / ((1 - uniform) p + uniform / Q), scaled so the expected weight under the
    prior p is 1. uniform = 1: every weight is 1 (no rebalancing)."""
    w = 1 / ((1 - uniform) * prior + uniform / len(prior))
    return w / (prior * w).sum()


def prior_shift(prior: torch.Tensor, trained: float, served: float) -> torch.Tensor:
    """(Q,) added to the logits of a model trained with rebalancing `trained`, it decodes as if trained
    with `served` (the learnt distribution is the data's times the weights, up to a constant)."""
    return (rebalancing_weights(prior, served) / rebalancing_weights(prior, trained)).log()


def losses(model: ColorVAE, L: torch.Tensor, ab: torch.Tensor, bins: torch.Tensor, soft_sigma: float,
           weights: torch.Tensor | None = None, p_zero: float = 0.0, bf16: bool = False,
           hint: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross entropy per ab pixel, rebalanced by `weights` per bin if given; KL per ab pixel), each
    averaged over the batch. The last p_zero of the batch is decoded at z = 0 (no KL for those).
    bf16: the model runs under bfloat16 autocast, the losses in float32. hint: (N, 3, H, W) colour hints
    for a model that takes them (see simulate_hints)."""
    small_ab = F.avg_pool2d(ab, 4)
    z = None
    kl = torch.zeros(())
    if model.config.latent:
        n = max(1, len(L) - int(round(len(L) * p_zero)))
        with low_precision(bf16):
            mu, logvar = (t.float() for t in model.encode(L[:n], ab[:n] / AB_SCALE))
        drawn = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        kl = (kl_divergence(mu, logvar) / small_ab[0, 0].numel()).mean()
        z = torch.cat([drawn, drawn.new_zeros(len(L) - n, *drawn.shape[1:])])
    with low_precision(bf16):
        logits = model.decode(L, z, hint).float()
    ce = -(soft_targets(small_ab, bins, soft_sigma) * F.log_softmax(logits, dim=1)).sum(dim=1)
    if weights is not None:
        ce = ce * weights[nearest_bin(small_ab, bins)]
    return ce.mean(), kl


@dataclass(frozen=True)
class HintDraw:
    """How training simulates a user's colour hints, at the working size (where a pixel is several of
    the photo's): points, patches, colours taken from the region a point is in, and strokes."""

    p_none: float = 0.25  # crops with no hint at all: the model must colour alone as well
    most: int = 48  # up to this many hints in a crop, log-uniformly (few are common, many possible)
    p_region: float = 0.25  # of the hints, the colour is the mean of the region around the point
    p_stroke: float = 0.15  # of the hints, a stroke of one colour (its mean along the stroke)
    largest: int = 3  # patch and stroke width in working pixels: 1-9 photo pixels at a typical 3x shrink
    exactly: int | None = None  # this many hints in every crop instead (evaluation)


def _disc(L: np.ndarray, ab: np.ndarray, y: int, x: int, radius: int) -> np.ndarray:
    """Pixels within radius of (y, x) that look like the same region: similar lightness and colour."""
    h, w = L.shape
    yy, xx = np.ogrid[:h, :w]
    near = (yy - y) ** 2 + (xx - x) ** 2 <= radius * radius
    return near & (np.abs(L - L[y, x]) < 6) & (np.hypot(*(ab - ab[:, y : y + 1, x : x + 1])) < 15)


def simulate_hints(L: np.ndarray, ab: np.ndarray, rng: np.random.Generator, draw: HintDraw = HintDraw()) -> np.ndarray:
    """L (h, w) in [0, 100] and the true ab (2, h, w) of one crop -> hints (3, h, w): the hinted a and b
    / AB_SCALE, and 1 where hinted (zeros elsewhere). Each hint's colour is the true mean over the
    pixels it covers, as a user picks one colour for a spot."""
    h, w = L.shape
    hint = np.zeros((3, h, w), np.float32)
    if draw.exactly is None and rng.random() < draw.p_none:
        return hint
    count = draw.exactly if draw.exactly is not None else int(round(np.exp(rng.uniform(0, np.log(draw.most)))))
    for _ in range(count):
        y, x, size = int(rng.integers(h)), int(rng.integers(w)), int(rng.integers(1, draw.largest + 1))
        where = np.zeros((h, w), bool)
        kind = rng.random()
        if kind < draw.p_stroke:
            length, angle = rng.uniform(4, 16), rng.uniform(0, np.pi)
            for t in np.linspace(0, length, int(length) * 2):
                cy, cx = int(round(y + t * np.sin(angle))), int(round(x + t * np.cos(angle)))
                where[max(cy, 0) : cy + size, max(cx, 0) : cx + size] = True
            colour = ab[:, where].mean(axis=1)
        else:
            where[y : y + size, x : x + size] = True
            source = _disc(L, ab, y, x, 6) if kind < draw.p_stroke + draw.p_region else where
            colour = ab[:, source].mean(axis=1)
        hint[:2, where] = (colour / AB_SCALE)[:, None]
        hint[2, where] = 1.0
    return hint


def hints_for(L: torch.Tensor, ab: torch.Tensor, rng: np.random.Generator, draw: HintDraw = HintDraw()) -> torch.Tensor:
    """simulate_hints for a batch: L / 100 (N, 1, H, W), ab (N, 2, H, W) -> (N, 3, H, W)."""
    L, ab = L[:, 0].numpy() * 100, ab.numpy()
    return torch.from_numpy(np.stack([simulate_hints(l, a, rng, draw) for l, a in zip(L, ab)]))


def load_val(folder: str, working_size: int, count: int = 16) -> np.ndarray:
    """Centre crops (count, s, s, 3) uint8 of photos shrunk to the working size, s a multiple of 16."""
    images = [shrink(load_rgb(p), working_size) for p in list_images([Path(folder)])[:count]]
    s = min(min(im.shape[:2]) for im in images) // 16 * 16
    return np.stack([im[(im.shape[0] - s) // 2 :][:s, (im.shape[1] - s) // 2 :][:, :s] for im in images])


@torch.no_grad()
def evaluate(model: ColorVAE, val: np.ndarray, bins: torch.Tensor, soft_sigma: float, samples: int = 8) -> dict[str, float]:
    """Cross entropy and KL on the validation crops; PSNR and colourfulness of the z = 0 colouring
    decoded as serving decodes it; for the VAE, the PSNR of the best of `samples` (z = 0 and draws)."""
    model.eval()
    L, ab = lab_batch(val)
    ce, kl = losses(model, L, ab, bins, soft_sigma)
    truth = val.astype(np.float32) / 255

    def colouring(z):
        pred = torch.from_numpy(annealed_mean(model.decode(L, z).numpy(), bins.numpy(), TEMPERATURE))
        pred = F.interpolate(pred, size=L.shape[2:], mode="bilinear", align_corners=False)
        rgb = lab_to_rgb_keep_lightness(torch.cat([L * 100, pred], dim=1).permute(0, 2, 3, 1).numpy())
        return rgb, 10 * np.log10(1 / ((np.round(rgb * 255) / 255 - truth) ** 2).mean(axis=(1, 2, 3)))

    lat = model.config.latent
    shape = (len(L), lat, 1, 1)
    rgb, psnr = colouring(torch.zeros(shape) if lat else None)
    if model.config.hints:  # ten seeded points from the truth, the bench's middle case
        hint = hints_for(L, ab, np.random.default_rng(0), HintDraw(p_region=0, p_stroke=0, largest=1, exactly=10))
        hinted = torch.from_numpy(annealed_mean(model.decode(L, torch.zeros(shape), hint).numpy(), bins.numpy(), TEMPERATURE))
        hinted = F.interpolate(hinted, size=L.shape[2:], mode="bilinear", align_corners=False)
        rgb10 = lab_to_rgb_keep_lightness(torch.cat([L * 100, hinted], dim=1).permute(0, 2, 3, 1).numpy())
        psnr10 = 10 * np.log10(1 / ((np.round(rgb10 * 255) / 255 - truth) ** 2).mean(axis=(1, 2, 3)))
    out = {
        "ce": float(ce), "kl": float(kl), "psnr": float(psnr.mean()),
        "colourfulness": float(np.mean([colourfulness(x) for x in rgb])),
        "colourfulness_truth": float(np.mean([colourfulness(x) for x in truth])),
    }
    if model.config.hints:
        out["psnr_hints10"] = float(psnr10.mean())
    if lat:
        g = torch.Generator().manual_seed(0)
        draws = [colouring(torch.randn(shape, generator=g))[1] for _ in range(samples - 1)]
        out["psnr_best"] = float(np.max([psnr, *draws], axis=0).mean())
    model.train()
    return out


def with_hints(state: dict, model: ColorVAE) -> tuple[dict, ColorVAE]:
    """A model trained without hints, grown to take them: the new input channels start with zero weight,
    so it colours as before until it learns what hints mean. Its optimizer state and cycle do not fit
    the grown model: a fresh cycle starts."""
    grown = build_model({**asdict(model.config), "hints": True})
    ema = grown_weights(grown, {k: v.float() for k, v in state["ema"].items()})
    log.info("grew %s to take colour hints", state["source"])
    return {k: state[k] for k in ("step", "history", "source", "colour_prior") if k in state} | {"ema": ema}, grown


def train(cfg: ColorizeTrainConfig) -> Path:
    state, model, step0 = start(cfg, build_model)
    if state is not None:  # the scale the model learnt at is part of the model, as its architecture is
        cfg.working_size = state["config"].get("working_size", cfg.working_size)
        if cfg.hints and not model.config.hints:
            state, model = with_hints(state, model)
            cfg.net = asdict(model.config)
    bins = torch.from_numpy(ab_bins())
    if model.config.bins != len(bins):
        raise ValueError(f"the model predicts {model.config.bins} bins, restore.color.ab_bins has {len(bins)}")
    sampler = CropSampler([Path(d) for d in cfg.data], cfg.patch, cfg.seed + step0, long_side=cfg.working_size, rotate=False)
    chroma = [np.abs(rgb_to_lab(im[::4, ::4].astype(np.float32) / 255)[..., 1:]).mean() for im in sampler.images]
    sampler.images = [im for im, c in zip(sampler.images, chroma) if c >= cfg.min_chroma]
    val = load_val(cfg.val, cfg.working_size) if cfg.val else None
    prior = colour_prior(sampler.images, bins)
    weights = rebalancing_weights(prior, cfg.rebalance) if cfg.rebalance < 1 else None

    rng = np.random.default_rng(cfg.seed + step0 + 1)
    draw = HintDraw(**cfg.hint_draw)

    def step_loss(model, step):
        L, ab = lab_batch(sampler.batch(cfg.batch))
        hint = hints_for(L, ab, rng, draw) if model.config.hints else None
        ce, kl = losses(model, L, ab, bins, cfg.soft_sigma, weights, cfg.p_zero, cfg.bf16, hint)
        return ce + cfg.kl_weight * min(1.0, step / cfg.kl_warmup) * kl

    return train_loop(cfg, model, state, step_loss, (lambda ema: evaluate(ema, val, bins, cfg.soft_sigma)) if val is not None else None,
                      extra={"colour_prior": prior})  # export needs it to shift the rebalancing
