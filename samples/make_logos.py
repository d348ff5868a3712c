"""Rebuild samples/logos/: logo watermarks the remover never trained on, for the held-out check.

    python samples/make_logos.py

Training draws outlined rings, boxes, stars and polygons around a letter (restore.training.watermarks).
These are filled pictograms instead (a camera, a shield with a chevron, a mountain under a sun, a gear),
with no text, drawn here from geometry alone, so no font or third-party artwork is involved: CC0.
Each is drawn 4x larger and shrunk, for anti-aliased edges as real logo files have.
"""
import math
from pathlib import Path

from PIL import Image, ImageDraw

SIDE, SCALE = 160, 4
S = SIDE * SCALE


def canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    im = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    return im, ImageDraw.Draw(im)


def camera(color):
    im, d = canvas()
    d.rounded_rectangle((0.06 * S, 0.28 * S, 0.94 * S, 0.84 * S), radius=0.08 * S, fill=color)
    d.rectangle((0.34 * S, 0.18 * S, 0.62 * S, 0.30 * S), fill=color)
    d.ellipse((0.31 * S, 0.37 * S, 0.69 * S, 0.75 * S), fill=(0, 0, 0, 0))  # the lens is a hole
    d.ellipse((0.38 * S, 0.44 * S, 0.62 * S, 0.68 * S), fill=color)
    return im


def shield(color):
    im, d = canvas()
    d.polygon([(0.5 * S, 0.04 * S), (0.9 * S, 0.16 * S), (0.86 * S, 0.56 * S), (0.5 * S, 0.96 * S),
               (0.14 * S, 0.56 * S), (0.1 * S, 0.16 * S)], fill=color)
    d.line([(0.25 * S, 0.42 * S), (0.5 * S, 0.62 * S), (0.75 * S, 0.42 * S)], fill=(0, 0, 0, 0), width=int(0.09 * S), joint="curve")
    return im


def mountain(color):
    im, d = canvas()
    d.ellipse((0.58 * S, 0.08 * S, 0.86 * S, 0.36 * S), fill=color)
    d.polygon([(0.02 * S, 0.9 * S), (0.36 * S, 0.3 * S), (0.56 * S, 0.62 * S), (0.7 * S, 0.46 * S), (0.98 * S, 0.9 * S)], fill=color)
    return im


def gear(color, teeth=9):
    im, d = canvas()
    c, outer, inner = S / 2, 0.46 * S, 0.36 * S
    pts = []
    for k in range(teeth * 4):
        r = outer if k % 4 in (1, 2) else inner
        a = 2 * math.pi * k / (teeth * 4)
        pts.append((c + r * math.cos(a), c + r * math.sin(a)))
    d.polygon(pts, fill=color)
    d.ellipse((c - 0.14 * S, c - 0.14 * S, c + 0.14 * S, c + 0.14 * S), fill=(0, 0, 0, 0))
    return im


LOGOS = {"camera": (camera, (255, 255, 255, 255)), "shield": (shield, (200, 30, 40, 255)),
         "mountain": (mountain, (20, 60, 170, 255)), "gear": (gear, (30, 30, 30, 255))}

if __name__ == "__main__":
    out = Path(__file__).parent / "logos"
    out.mkdir(exist_ok=True)
    for name, (draw, color) in LOGOS.items():
        draw(color).resize((SIDE, SIDE), Image.LANCZOS).save(out / f"{name}.png", optimize=True)
