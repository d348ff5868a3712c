"""The shipped watermark remover itself: it must find and reduce the marks it was trained on, and leave
unmarked photos and pixels (mostly) alone. The bounds are floors under the current model (version 1,
10k steps: +3.6 dB and mask F1 0.73 on the CBSD68 set), not the issue's targets, which the bench checks."""
import numpy as np
import pytest

from conftest import REPO
from restore.bench.metrics import psnr
from restore.io import Picture, read_image, to_float
from restore.pipeline import run
from restore.training.watermarks import WatermarkSynth, find_fonts

SAMPLES = REPO / "samples" / "clean"


@pytest.mark.parametrize("name,seed", [("coffee.png", 1), ("rocket.png", 2), ("astronaut.png", 3)])
def test_removes_a_synthetic_watermark(shipped_ctx, name, seed):
    clean = to_float(read_image(SAMPLES / name))
    marked, alpha = WatermarkSynth(find_fonts()).apply(clean, np.random.default_rng(seed))
    marked = np.round(marked * 255).astype(np.uint8)
    result = run("dewatermark", Picture(marked, None, "PNG"), {}, shipped_ctx)
    out = result.picture.color / 255.0
    assert psnr(out, clean) > psnr(marked / 255.0, clean) + 0.3
    found = result.metrics["tasks"]["dewatermark"]["watermarked_fraction"]
    assert 0.3 * (alpha > 0.002).mean() < found < 3 * (alpha > 0.002).mean() + 0.01
    far = alpha == 0
    assert (result.picture.color[far] == marked[far]).all(axis=-1).mean() > 0.9  # unmarked pixels mostly untouched


@pytest.mark.parametrize("name", ["chelsea.png", "coffee.png", "camera.png"])
def test_leaves_a_clean_photo_mostly_alone(shipped_ctx, name):
    clean = read_image(SAMPLES / name).color
    out = run("dewatermark", Picture(clean, None, "PNG"), {}, shipped_ctx).picture.color
    assert (out != clean).any(axis=-1).mean() < 0.05 and psnr(out / 255.0, clean / 255.0) > 30
