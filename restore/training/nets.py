"""Networks. Torch only: imported by training and export, never by serving."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 3
    widths: tuple[int, ...] = (48, 96, 192, 384)  # one per level; level 0 works at half resolution
    blocks: tuple[int, ...] = (1, 1, 1, 2)  # residual blocks per level (encoder and decoder each)

    @classmethod
    def from_dict(cls, values: dict) -> "UNetConfig":
        """From a checkpoint's saved config, where tuples came back as lists."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    @property
    def stride(self) -> int:
        """Input height and width must be multiples of this (pixel-unshuffle x levels of down-sampling)."""
        return 2 * 2 ** (len(self.widths) - 1)


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return x + self.conv2(self.act(self.conv1(x)))


def _stack(c: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(c) for _ in range(n)])


def grown_weights(model: nn.Module, weights: dict) -> dict:
    """weights, of a model with fewer residual blocks somewhere or fewer input channels, made whole for
    `model`: each block the weights lack keeps `model`'s initialisation but with its second convolution
    zeroed, so it starts as the identity; new input channels start with zero weight. The grown model
    computes what the trained one did."""
    own = model.state_dict()
    unknown = set(weights) - set(own)
    if unknown:
        raise ValueError(f"the weights do not fit this architecture: {sorted(unknown)[:3]}")
    grown = dict(weights)
    for key, value in own.items():
        if key not in weights:
            grown[key] = torch.zeros_like(value) if ".conv2." in key else value
        elif weights[key].shape != value.shape:
            grown[key] = _widened(weights[key], value.shape, key)
    return grown


def _widened(weight: torch.Tensor, shape: torch.Size, key: str) -> torch.Tensor:
    """A convolution's weight given more input channels, the new ones at the end with zero weight: the
    layer computes what it did whatever the new inputs hold (how a model learns to take new inputs)."""
    if weight.ndim != 4 or weight.shape[0] != shape[0] or weight.shape[2:] != shape[2:] or weight.shape[1] > shape[1]:
        raise ValueError(f"{key}: cannot grow {tuple(weight.shape)} to {tuple(shape)}")
    out = weight.new_zeros(shape)
    out[:, : weight.shape[1]] = weight
    return out


def _descend(net: nn.Module, x):
    """The encoder half both autoencoders share: head, then per level its blocks (kept as the skip) and
    a strided down-sampling. Returns the bottleneck input and the skips, finest first."""
    h = net.head(x)
    skips = []
    for enc, down in zip(net.enc, net.down):
        h = enc(h)
        skips.append(h)
        h = down(h)
    return h, skips


class UNet(nn.Module):
    """The encoder-decoder every model here shares (DRUNet lineage).

    Pixel-unshuffle by 2 first, so the heaviest level runs on a quarter of the pixels; strided 2x2
    convolutions down, transposed 2x2 up, additive skips; pixel-shuffle back to full resolution.
    x: (N, C, H, W) float in [0, 1] (noise may push it outside), H and W multiples of config.stride.
    """

    def __init__(self, config: UNetConfig, out_channels: int):
        super().__init__()
        self.config = config
        w, b, c = config.widths, config.blocks, config.in_channels
        self.head = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(4 * c, w[0], 3, padding=1))
        self.enc = nn.ModuleList([_stack(w[i], b[i]) for i in range(len(w) - 1)])
        self.down = nn.ModuleList([nn.Conv2d(w[i], w[i + 1], 2, stride=2) for i in range(len(w) - 1)])
        self.mid = _stack(w[-1], b[-1])
        self.up = nn.ModuleList([nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in range(len(w) - 1)])
        self.dec = nn.ModuleList([_stack(w[i], b[i]) for i in range(len(w) - 1)])
        self.tail = nn.Sequential(nn.Conv2d(w[0], 4 * out_channels, 3, padding=1), nn.PixelShuffle(2))

    def decode(self, x):
        """(N, in_channels, H, W) -> (N, out_channels, H, W)."""
        h, skips = _descend(self, x)
        h = self.mid(h)
        for up, dec, skip in zip(reversed(self.up), reversed(self.dec), reversed(skips)):
            h = dec(up(h) + skip)
        return self.tail(h)


class DenoiseUNet(UNet):
    """Blind residual denoiser: predicts the noise and returns input - noise, so an untouched image is
    the easy answer at sigma 0."""

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__(config, config.in_channels)

    def forward(self, x):
        return x - self.decode(x)


class WatermarkUNet(UNet):
    """Two heads on one autoencoder: a soft watermark mask m and restored pixels r.

    Inputs: the image x (N, 3, H, W) and a hint (N, 1, H, W): the user's mask of where the watermark is,
    or zeros when there is none (the blind case). Returns (m * r + (1 - m) * x, m, r). In eval mode (and
    so in the exported model) mask values below `keep_below` are set to 0, so pixels the model finds
    untouched come back exactly as they were.
    """

    keep_below = 1 / 512

    def __init__(self, config: UNetConfig = UNetConfig(in_channels=4)):
        if config.in_channels != 4:
            raise ValueError("WatermarkUNet takes 4 input channels: the image and the hint")
        super().__init__(config, 4)

    def forward(self, x, hint):
        y = self.decode(torch.cat([x, hint], dim=1))
        mask = torch.sigmoid(y[:, :1].float())  # float32 even under bfloat16 autocast, see training.loop.low_precision
        if not self.training:
            mask = mask * (mask >= self.keep_below).to(mask.dtype)
        restored = x + y[:, 1:]
        return mask * restored + (1 - mask) * x, mask, restored


HINT_CHANNELS = 3  # a / 110, b / 110 where hinted, and the mask of hinted pixels


def quarter_hints(hint: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) hints -> (N, 3, H / 4, W / 4): per 4x4 cell, the mean a and b of its hinted pixels (zero
    where none) and whether it holds any."""
    share = F.avg_pool2d(hint[:, 2:], 4)
    ab = F.avg_pool2d(hint[:, :2], 4) / share.clamp(min=1 / 16)
    return torch.cat([ab, F.max_pool2d(hint[:, 2:], 4)], dim=1)


@dataclass(frozen=True)
class ColorConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256)  # levels at 1/2, 1/4, 1/8, 1/16 of the working size
    blocks: tuple[int, ...] = (1, 1, 2, 2)
    # Channels of z, one vector for the whole photo (a colour scheme; one vector per 16x16 pixels draws a
    # patchwork, each cell wrong in its own way); 0 makes the deterministic autoencoder.
    latent: int = 8
    bins: int = 261  # ab classes (restore.color.ab_bins)
    # Colour hints as input: three channels beside L (the hinted a and b / 110, and a mask of where hints
    # are), zeros where there are none, so one model serves no hints and hints.
    hints: bool = False

    from_dict = classmethod(UNetConfig.from_dict.__func__)

    @property
    def stride(self) -> int:
        return 2 * 2 ** (len(self.widths) - 1)


class ColorVAE(nn.Module):
    """Conditional VAE for colorization in Lab: p(ab | L, z) with z ~ N(0, I), q(z | L, ab) to train.

    The decoder is an encoder-decoder over L (pixel-unshuffle, strided convolutions, skips) with z
    added at the bottleneck: one vector for the photo, so a sample is one coherent colour scheme that
    the decoder spreads over the regions L shows. It predicts logits over the ab bins at a quarter of
    the working size: colour is smooth, and the full-resolution L carries the detail. The posterior
    encoder sees L and the true ab, only in training. latent = 0 gives the deterministic autoencoder,
    trained the same way, that the benchmark compares with.
    L: (N, 1, H, W) lightness / 100; ab: (N, 2, H, W) / 110; z: (N, latent, 1, 1).
    """

    def __init__(self, config: ColorConfig = ColorConfig()):
        super().__init__()
        self.config = config
        w, b = config.widths, config.blocks
        self.head = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(4 * (1 + HINT_CHANNELS * config.hints), w[0], 3, padding=1))
        self.enc = nn.ModuleList([_stack(w[i], b[i]) for i in range(len(w) - 1)])
        self.down = nn.ModuleList([nn.Conv2d(w[i], w[i + 1], 2, stride=2) for i in range(len(w) - 1)])
        self.mid = _stack(w[-1], b[-1])
        # The decoder climbs back to level 1 (a quarter of the working size) only.
        self.up = nn.ModuleList([nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in range(1, len(w) - 1)])
        self.dec = nn.ModuleList([_stack(w[i], b[i]) for i in range(1, len(w) - 1)])
        # With hints, the logits also see them directly at their own (quarter) size: a cell that holds hints
        # gets their mean colour and a flag, so a hint's own cell follows it from the first steps of
        # training, and the network's depth is left to spread it over its region.
        head_in = w[1] + HINT_CHANNELS * config.hints
        self.logits = nn.Sequential(nn.Conv2d(head_in, w[1], 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(w[1], config.bins, 1))
        if config.latent:
            self.from_z = nn.Conv2d(config.latent, w[-1], 1)
            q = [c // 2 for c in w]  # the posterior only has to summarise colours it is shown: half as wide
            self.posterior = nn.Sequential(
                nn.PixelUnshuffle(2), nn.Conv2d(12, q[0], 3, padding=1), nn.ReLU(inplace=True),
                *[layer for i in range(len(q) - 1) for layer in (nn.Conv2d(q[i], q[i + 1], 2, stride=2), ResBlock(q[i + 1]))],
                nn.Conv2d(q[-1], 2 * config.latent, 1),
            )

    def decode(self, L, z=None, hint=None):
        """Logits (N, bins, H / 4, W / 4) of the ab bins given L, z (None or zeros: the prior's mode) and,
        for a model that takes them, the hints (N, 3, H, W) (None: no hints)."""
        if self.config.hints:
            hint = hint if hint is not None else L.new_zeros(len(L), HINT_CHANNELS, *L.shape[2:])
            L = torch.cat([L, hint], dim=1)
        h, skips = _descend(self, L)
        if self.config.latent and z is not None:
            h = h + self.from_z(z)
        h = self.mid(h)
        for up, dec, skip in zip(reversed(self.up), reversed(self.dec), reversed(skips[1:])):
            h = dec(up(h) + skip)
        if self.config.hints:
            h = torch.cat([h, quarter_hints(hint)], dim=1)
        return self.logits(h)

    def encode(self, L, ab):
        """The posterior's mean and log-variance, each (N, latent, 1, 1): averaged over the photo."""
        stats = self.posterior(torch.cat([L, ab], dim=1))
        mu, logvar = stats.mean(dim=(2, 3), keepdim=True).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 6)

    def forward(self, L, z, hint=None):
        """What serving runs: the logits for a given z (and hints)."""
        return self.decode(L, z, hint)
