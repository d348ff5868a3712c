"""Rebuild samples/: public-domain and CC0 photos that scikit-image ships, clean and with noise added.

    python samples/make_samples.py   (needs scikit-image, from the dev extra)

clean/ holds the originals (never part of ../shared/data, so they also test generalisation);
noisy/ holds them with Gaussian noise, sigma 25 on the 0-255 scale, clipped and saved as 8-bit PNG,
as a user's noisy file would be. The seed is fixed, so the files are reproducible.
"""
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

PHOTOS = {  # name: licence, from scikit-image's skimage.data docstrings
    "astronaut": "public domain (NASA)",
    "rocket": "public domain (SpaceX)",
    "chelsea": "CC0 (Stefan van der Walt)",
    "coffee": "CC0 (Rachel Michetti)",
    "camera": "no copyright restrictions (gray)",
}
SIGMA = 25

here = Path(__file__).parent
for i, name in enumerate(PHOTOS):
    clean = getattr(data, name)()
    noisy = clean + np.random.default_rng(i).standard_normal(clean.shape) * SIGMA
    for folder, img in (("clean", clean), ("noisy", np.clip(np.round(noisy), 0, 255).astype(np.uint8))):
        (here / folder).mkdir(exist_ok=True)
        Image.fromarray(img).save(here / folder / f"{name}.png", optimize=True)
(here / "LICENSES.md").write_text(
    "# Sample photos\n\nFrom scikit-image's `skimage.data`; `noisy/` adds Gaussian noise (sigma 25, seeded) to `clean/`.\n\n"
    + "\n".join(f"- `{n}.png`: {lic}" for n, lic in PHOTOS.items()) + "\n"
    + "\n`logos/`: pictogram watermarks drawn by `make_logos.py` from geometry alone (no fonts, no artwork): CC0.\n"
)
