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


def test_filled_logos_cover_more_and_leave_the_letter_out(synth):
    img = smooth_image(160, 160)
    outlined = WatermarkSynth(synth.fonts, text_share=0.0)
    filled = WatermarkSynth(synth.fonts, text_share=0.0, fill_share=1.0)
    for seed in range(4):
        a_out = outlined.apply(img, np.random.default_rng(seed))[1]
        a_fill = filled.apply(img, np.random.default_rng(seed))[1]
        assert (a_fill > 0.01).sum() > 1.5 * (a_out > 0.01).sum(), seed


def test_user_logos_only(synth, tmp_path):
    from PIL import Image

    logo = np.zeros((40, 40, 4), np.uint8)
    logo[10:30, 10:30] = (255, 0, 0, 255)  # a red square on a transparent ground
    Image.fromarray(logo).save(tmp_path / "square.png")
    only_logos = WatermarkSynth(synth.fonts, logos=[tmp_path / "square.png"], text_share=0.0, user_logo_share=1.0)
    marked, alpha = only_logos.apply(smooth_image(128, 128), np.random.default_rng(0))
    assert (alpha > 0.01).any()
    assert (marked[..., 0] >= marked[..., 1] - 1e-6)[alpha > 0.2].all()  # every mark is the red square


def test_turned_marks_run_up_the_side(synth):
    """turn_share=1 turns every mark a quarter: text, wider than tall when upright, comes out taller."""
    def aspect(share):
        turned = WatermarkSynth(synth.fonts, text_share=1.0, turn_share=share)
        ratios = []
        for seed in range(12):
            alpha = turned.layer(400, 400, np.random.default_rng(seed))[1]
            rows, cols = np.nonzero(alpha > 0.05)
            ratios.append(np.log((np.ptp(rows) + 1) / (np.ptp(cols) + 1)))
        return np.mean(ratios)

    assert aspect(0.0) < 0 < aspect(1.0)
    plain = WatermarkSynth(synth.fonts).layer(64, 64, np.random.default_rng(3))[1]
    np.testing.assert_array_equal(plain, WatermarkSynth(synth.fonts, turn_share=0.0).layer(64, 64, np.random.default_rng(3))[1])
