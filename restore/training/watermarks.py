"""Synthetic visible watermarks: J = I (1 - a) + W a, with the ground-truth alpha a as the mask.

Text marks (fonts, sizes, words, colours, rotations, outlines and shadows) and logo-like marks
(procedural shapes with a glyph, or user PNGs with alpha), placed once or tiled over the image, at an
opacity of 0.3-0.9. Everything is drawn from a numpy Generator, so a seed reproduces a watermark.
Serving never imports this module (it is training data).
"""
from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Training draws with the DejaVu family only (Debian's fonts-dejavu-core, on every machine here), so
# any other font installed later stays unseen and can test generalisation.
TRAINING_FONTS = Path("/usr/share/fonts/truetype/dejavu")
WORDS = (
    "SAMPLE", "PREVIEW", "COPYRIGHT", "PROOF", "DRAFT", "CONFIDENTIAL", "Studio", "Photography", "stock",
    "Getty", "Shutterstock", "Alamy", "iStock", "Dreamstime", "Adobe Stock", "Images", "watermark",
    "all rights reserved", "do not copy", "www.example.com", "@photographer", "Foto", "licensed",
)


def find_fonts(folders: list[Path] | None = None) -> list[Path]:
    """TrueType and OpenType fonts under the given folders (default: the training fonts)."""
    folders = folders or [TRAINING_FONTS]
    return sorted(p for d in folders for p in Path(d).rglob("*") if p.suffix.lower() in (".ttf", ".otf"))


def _random_text(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    kind = rng.random()
    if kind < 0.6:
        text = str(rng.choice(words))
    elif kind < 0.8:  # made-up names and numbers: the model must not learn a vocabulary
        letters = string.ascii_letters + string.digits
        text = "".join(rng.choice(list(letters), rng.integers(3, 12)))
    else:
        text = f"{rng.choice(words)} {rng.integers(1990, 2027)}"
    return ("© " + text) if rng.random() < 0.3 else text


@dataclass
class WatermarkSynth:
    fonts: list[Path]
    words: tuple[str, ...] = WORDS
    logos: list[Path] = field(default_factory=list)  # PNGs with alpha, used as they are (recoloured sometimes)
    opacity: tuple[float, float] = (0.3, 0.9)
    text_share: float = 0.7  # of the marks; the rest are logos
    user_logo_share: float = 0.5  # of the logos, drawn from `logos` when given; the rest are procedural
    # Of the procedural logos, drawn filled with the letter cut out (solid pictograms, as many stock-photo
    # marks are) rather than outlined. 0 by default, which keeps the fixed validation set as it was built.
    fill_share: float = 0.0
    # Of the marks, turned a quarter (on top of the usual tilt), as a credit running up a photo's side is.
    # 0 by default for the same reason; `restore bench dewatermark --turned` turns every mark.
    turn_share: float = 0.0

    def __post_init__(self):
        if not self.fonts:
            raise FileNotFoundError("no fonts to draw text watermarks with; pass a folder of .ttf/.otf files")
        self._logo_images = [Image.open(p).convert("RGBA") for p in self.logos]

    def _font(self, rng: np.random.Generator, size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(str(self.fonts[rng.integers(len(self.fonts))]), size)

    def _color(self, rng: np.random.Generator) -> tuple[int, int, int]:
        r = rng.random()
        if r < 0.4:
            return (255, 255, 255)
        if r < 0.6:
            return (0, 0, 0)
        return tuple(int(v) for v in rng.integers(0, 256, 3))

    def _text_mark(self, rng: np.random.Generator, size: int) -> Image.Image:
        """One text mark as an RGBA image (alpha = coverage), with an outline or shadow sometimes."""
        font = self._font(rng, size)
        text = _random_text(rng, self.words)
        color = self._color(rng)
        stroke = int(rng.integers(1, max(2, size // 12))) if rng.random() < 0.3 else 0
        stroke_color = tuple(255 - c for c in color)
        box = font.getbbox(text, stroke_width=stroke)
        pad = size // 4 + stroke + 2
        mark = Image.new("RGBA", (box[2] - box[0] + 2 * pad, box[3] - box[1] + 2 * pad), (0, 0, 0, 0))
        draw = ImageDraw.Draw(mark)
        origin = (pad - box[0], pad - box[1])
        if rng.random() < 0.25:  # a soft drop shadow under the text
            shadow = Image.new("RGBA", mark.size, (0, 0, 0, 0))
            offset = int(rng.integers(1, max(2, size // 10)))
            ImageDraw.Draw(shadow).text((origin[0] + offset, origin[1] + offset), text, font=font, fill=(0, 0, 0, 160))
            mark = Image.alpha_composite(mark, shadow.filter(ImageFilter.GaussianBlur(offset / 2)))
            draw = ImageDraw.Draw(mark)
        draw.text(origin, text, font=font, fill=color + (255,), stroke_width=stroke, stroke_fill=stroke_color + (255,))
        return mark

    def _logo_mark(self, rng: np.random.Generator, size: int) -> Image.Image:
        """A logo: a user PNG, or procedural shapes (ring, box, star, polygon) around a glyph, outlined, or
        filled with the glyph cut out."""
        if self._logo_images and rng.random() < self.user_logo_share:
            logo = self._logo_images[rng.integers(len(self._logo_images))]
            scale = size * 2 / max(logo.size)
            return logo.resize((max(1, int(logo.width * scale)), max(1, int(logo.height * scale))), Image.LANCZOS)
        filled = bool(self.fill_share) and rng.random() < self.fill_share  # no draw at 0: same marks as before
        side = size * 2
        mark = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        draw = ImageDraw.Draw(mark)
        color = self._color(rng) + (255,)
        width = max(2, side // int(rng.integers(12, 30)))
        m = side // 10
        shape = rng.integers(4)
        if shape == 0:
            draw.ellipse((m, m, side - m, side - m), outline=color, width=width, fill=color if filled else None)
        elif shape == 1:
            draw.rounded_rectangle((m, m, side - m, side - m), radius=side // 8, outline=color, width=width,
                                   fill=color if filled else None)
        else:
            points = 5 if shape == 2 else int(rng.integers(3, 9))
            radii = (side / 2 - m, (side / 2 - m) * (0.45 if shape == 2 else 1.0))
            step = 2 if shape == 2 else 1
            pts = [
                (side / 2 + radii[k % step] * math.cos(math.pi * k / (points * step / 2) - math.pi / 2),
                 side / 2 + radii[k % step] * math.sin(math.pi * k / (points * step / 2) - math.pi / 2))
                for k in range(points * step)
            ]
            draw.polygon(pts, outline=color, width=width, fill=color if filled else None)
        glyph = str(rng.choice(list(string.ascii_uppercase + "&©®™★")))
        font = self._font(rng, side // 2)
        draw.text((side / 2, side / 2), glyph, font=font, fill=(0, 0, 0, 0) if filled else color, anchor="mm")
        return mark

    def layer(self, height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The watermark layer for an image of this size: colour W (H, W, 3) and alpha a (H, W), in [0, 1]."""
        canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        short = min(height, width)
        tiled = rng.random() < 0.35
        size = int(short * rng.uniform(0.04, 0.09 if tiled else 0.2)) + 8
        mark = self._text_mark(rng, size) if rng.random() < self.text_share else self._logo_mark(rng, size)
        angle = float(rng.uniform(-45, 45)) if rng.random() < 0.6 else 0.0
        if self.turn_share and rng.random() < self.turn_share:  # no draw at 0: same marks as before
            angle += 90.0 if rng.random() < 0.5 else -90.0
        mark = mark.rotate(angle, expand=True, resample=Image.BICUBIC)
        if tiled:  # a stock-photo grid, rows shifted by half a step
            sx = mark.width + int(rng.uniform(0.2, 1.0) * mark.width)
            sy = mark.height + int(rng.uniform(0.3, 1.5) * mark.height)
            x0, y0 = -int(rng.integers(sx)), -int(rng.integers(sy))
            for row, y in enumerate(range(y0, height, sy)):
                for x in range(x0 + (sx // 2 if row % 2 else 0), width, sx):
                    _paste(canvas, mark, x, y)
        else:
            x = int(rng.integers(-mark.width // 4, max(1, width - mark.width * 3 // 4)))
            y = int(rng.integers(-mark.height // 4, max(1, height - mark.height * 3 // 4)))
            _paste(canvas, mark, x, y)
        rgba = np.asarray(canvas, dtype=np.float32) / 255.0
        return rgba[..., :3], rgba[..., 3] * rng.uniform(*self.opacity)

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """image: (H, W, 3) float in [0, 1] -> (watermarked image, alpha mask (H, W))."""
        color, alpha = self.layer(image.shape[0], image.shape[1], rng)
        a = alpha[..., None]
        return image * (1 - a) + color * a, alpha


def _paste(canvas: Image.Image, mark: Image.Image, x: int, y: int) -> None:
    """Composite mark with its top-left at (x, y), clipped to the canvas (x and y may be negative)."""
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + mark.width, canvas.width), min(y + mark.height, canvas.height)
    if right > left and bottom > top:
        canvas.alpha_composite(mark.crop((left - x, top - y, right - x, bottom - y)), (left, top))
