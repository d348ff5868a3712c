"""Networks. Torch only: imported by training and export, never by serving."""
from __future__ import annotations

from dataclasses import dataclass

import torch
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
        h = self.head(x)
        skips = []
        for enc, down in zip(self.enc, self.down):
            h = enc(h)
            skips.append(h)
            h = down(h)
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
        mask = torch.sigmoid(y[:, :1])
        if not self.training:
            mask = mask * (mask >= self.keep_below).to(mask.dtype)
        restored = x + y[:, 1:]
        return mask * restored + (1 - mask) * x, mask, restored
