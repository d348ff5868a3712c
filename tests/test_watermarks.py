"""The watermark synthesizer (training data for dewatermark)."""
import numpy as np
import pytest

from conftest import smooth_image
from restore.training.watermarks import WatermarkSynth, find_fonts


@pytest.fixture(scope="module")
def synth():
    fonts = find_fonts()
    if not fonts:
        pytest.skip("no system fonts")
    return WatermarkSynth(fonts)


def test_composite_and_mask(synth):
    img = smooth_image(160, 240)
    for seed in range(12):
        marked, alpha = synth.apply(img, np.random.default_rng(seed))
        assert marked.shape == img.shape and alpha.shape == img.shape[:2]
        assert alpha.min() >= 0 and alpha.max() <= 0.9 + 1e-6
        assert 0 < (alpha > 0.01).mean() < 0.9, seed  # something is marked, not everything
        untouched = alpha == 0
        np.testing.assert_array_equal(marked[untouched], img[untouched])  # J = I where a = 0


def test_seeded_and_varied(synth):
    img = smooth_image(128, 128)
    a1 = synth.apply(img, np.random.default_rng(7))[1]
    a2 = synth.apply(img, np.random.default_rng(7))[1]
    np.testing.assert_array_equal(a1, a2)
    masks = [synth.apply(img, np.random.default_rng(s))[1] > 0.01 for s in range(8)]
    assert len({m.tobytes() for m in masks}) == 8


def test_needs_fonts(tmp_path):
    with pytest.raises(FileNotFoundError, match="no fonts"):
        WatermarkSynth(find_fonts([tmp_path]))
