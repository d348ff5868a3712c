"""Colorization: Lab conversions, decoding, full-size composition, sampling under a seed, the command line."""
import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from restore.cli import app
from restore.color import ab_bins, colourfulness, gray_of, lab_to_rgb, lab_to_rgb_keep_lightness, lightness, rgb_to_lab
from restore.errors import InputError
from restore.io import Picture, read_image
from restore.pipeline import run
from restore.tasks import colorize
from tests.conftest import smooth_image


def test_lab_round_trip_and_reference_values():
    rgb = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    assert np.abs(lab_to_rgb(rgb_to_lab(rgb)) - rgb).max() < 1e-4
    white, red = rgb_to_lab(np.array([[1, 1, 1], [1, 0, 0]], np.float32))
    assert np.allclose(white, [100, 0, 0], atol=1e-3)
    assert np.allclose(red, [53.24, 80.09, 67.20], atol=0.02)  # sRGB red in CIE Lab (D65)
    lab = rgb_to_lab(rgb)
    assert np.allclose(lab_to_rgb(np.concatenate([lab[..., :1], 0 * lab[..., 1:]], -1)), gray_of(rgb))


def test_out_of_gamut_colours_lose_chroma_not_lightness():
    lab = np.array([[60, 120, -120], [30, 0, 90], [50, 20, 10]], np.float32)  # two far outside sRGB, one inside
    kept = rgb_to_lab(lab_to_rgb_keep_lightness(lab))
    assert np.abs(kept[:, 0] - lab[:, 0]).max() < 0.05
    assert np.abs(rgb_to_lab(lab_to_rgb(lab))[:2, 0] - lab[:2, 0]).min() > 0.5  # plain clipping moves L
    assert np.allclose(kept[2], lab[2], atol=0.05)  # an in-gamut colour is untouched
    assert np.isclose(kept[0, 1] / lab[0, 1], kept[0, 2] / lab[0, 2], atol=0.01)  # a and b scaled together: same hue
    assert 0.2 < kept[0, 1] / lab[0, 1] < 1


def test_lightness_of_gray_and_colour_pictures():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    expected = rgb_to_lab(np.repeat(gray.astype(np.float32) / 255, 3, axis=2))[..., 0]
    assert np.allclose(lightness(gray), expected, atol=1e-4)
    assert np.allclose(lightness(np.repeat(gray, 3, axis=2)), expected, atol=1e-4)  # gray as RGB: the same L
    wide = (gray.astype(np.uint16) * 257)
    assert np.allclose(lightness(wide), expected, atol=1e-3)
    colour = (smooth_image() * 255).astype(np.uint8)
    assert np.allclose(lightness(colour), rgb_to_lab(colour / 255.0)[..., 0], atol=1e-3)


def test_ab_bins_cover_the_srgb_gamut():
    bins = ab_bins()
    assert 200 < len(bins) < 320 and np.all(bins % 10 == 0)
    ab = rgb_to_lab(np.random.default_rng(1).random((5000, 3)).astype(np.float32))[:, 1:]
    nearest = np.sqrt(((ab[:, None] - bins[None]) ** 2).sum(-1)).min(1)
    assert nearest.max() <= 5 * np.sqrt(2) + 1e-3  # every colour is within half a cell of a bin


def test_colourfulness():
    assert colourfulness(np.full((8, 8, 3), 0.5)) == 0.0
    vivid = np.zeros((8, 8, 3))
    vivid[:4, :, 0] = vivid[4:, :, 2] = 1
    assert colourfulness(vivid) > 100 > colourfulness(0.5 + 0.1 * (vivid - 0.5)) > 0


def test_annealed_mean():
    bins = ab_bins()
    logits = np.zeros((1, len(bins), 2, 2), np.float32)
    assert np.allclose(colorize.annealed_mean(logits, bins, 1.0)[0, :, 0, 0], bins.mean(0), atol=1e-3)
    logits[0, 17] = 5
    sharp = colorize.annealed_mean(logits, bins, 0.01)[0, :, 0, 0]
    assert np.allclose(sharp, bins[17], atol=1e-3)  # a low temperature picks the likeliest bin
    soft = colorize.annealed_mean(logits, bins, 1.0)[0, :, 0, 0]
    assert np.linalg.norm(soft - bins.mean(0)) < np.linalg.norm(sharp - bins.mean(0))  # the mean pulls to the middle


def test_working_shape():
    assert colorize.working_shape(321, 481, 256, 16) == (176, 256)
    assert colorize.working_shape(10000, 100, 256, 16) == (256, 16)  # never below one stride
    assert colorize.working_shape(40, 60, 256, 16) == (176, 256)  # small photos are scaled up to the model's scale


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_compose_keeps_the_gray_exactly_with_zero_colour(dtype):
    top = np.iinfo(dtype).max
    gray = np.random.default_rng(2).integers(0, top + 1, (70, 90, 1)).astype(dtype)
    out = colorize.compose(lightness(gray), np.zeros((2, 5, 6), np.float32), np.dtype(dtype))
    assert out.dtype == dtype and out.shape == (70, 90, 3)
    assert np.abs(out.astype(np.int64) - gray.astype(np.int64)).max() <= (1 if dtype == np.uint8 else 2)


def test_compose_bands_match_one_whole_resize(monkeypatch):
    """The band-by-band upsampling is the same as resizing the whole colour map at once: no seams."""
    monkeypatch.setattr(colorize, "BAND", 64)
    rng = np.random.default_rng(3)
    L = rng.uniform(20, 80, (300, 200)).astype(np.float32)
    ab = rng.uniform(-40, 40, (2, 19, 13)).astype(np.float32)
    whole = cv2.resize(ab.transpose(1, 2, 0), (200, 300), interpolation=cv2.INTER_LINEAR)
    expected = np.round(lab_to_rgb_keep_lightness(np.concatenate([L[..., None], whole], axis=2)) * 255)
    got = colorize.compose(L, ab, np.dtype(np.uint8)).astype(np.float64)
    assert np.abs(got - expected).max() <= 1


def test_samples_are_reproducible_under_a_seed(identity_ctx):
    gray = Picture((smooth_image(80, 120).mean(axis=2, keepdims=True) * 255).astype(np.uint8), None, "PNG")
    first = run("colorize", gray, {"samples": 4, "seed": 11}, identity_ctx)
    again = run("colorize", gray, {"samples": 4, "seed": 11}, identity_ctx)
    other = run("colorize", gray, {"samples": 4, "seed": 12}, identity_ctx)
    assert len(first.pictures) == 4 and all(p.color.shape == (80, 120, 3) for p in first.pictures)
    assert all(np.array_equal(a.color, b.color) for a, b in zip(first.pictures, again.pictures))
    assert np.array_equal(first.pictures[0].color, other.pictures[0].color)  # sample 0 is z = 0 whatever the seed
    assert not np.array_equal(first.pictures[1].color, other.pictures[1].color)
    assert len({p.color.tobytes() for p in first.pictures}) == 4  # the samples differ
    assert np.abs(lightness(first.pictures[2].color) - lightness(gray.color)).max() < 1.0  # the photo's L is kept
    metrics = first.metrics["tasks"]["colorize"]
    assert metrics["samples"] == 4 and metrics["seed"] == 11 and metrics["converted_to_gray"] is False


def test_colour_input_is_made_gray_first(identity_ctx):
    colour = (smooth_image(64, 64) * 255).astype(np.uint8)
    as_gray = np.repeat(np.round(gray_of(colour / 255.0)[..., :1] * 255).astype(np.uint8), 3, axis=2)
    a = run("colorize", Picture(colour, None, "PNG"), {}, identity_ctx)
    b = run("colorize", Picture(as_gray, None, "PNG"), {}, identity_ctx)
    assert a.metrics["tasks"]["colorize"]["converted_to_gray"] is True
    assert np.abs(a.picture.color.astype(int) - b.picture.color.astype(int)).max() <= 2  # only L mattered


def test_alpha_16_bit_and_chains(identity_ctx):
    gray = (smooth_image(48, 64)[..., :1] * 65535).astype(np.uint16)
    alpha = np.full((48, 64), 40000, np.uint16)
    result = run("colorize", Picture(gray, alpha, "PNG"), {"samples": 2}, identity_ctx)
    assert result.picture.color.dtype == np.uint16 and result.picture.color.shape == (48, 64, 3)
    assert all(np.array_equal(p.alpha, alpha) for p in result.pictures)
    chained = run("colorize,denoise", Picture(gray, None, "PNG"), {"samples": 3}, identity_ctx)
    assert len(chained.pictures) == 3 and list(chained.metrics["tasks"]) == ["colorize", "denoise"]
    before = run("denoise,colorize", Picture(gray, None, "PNG"), {"samples": 2, "sigma": 10}, identity_ctx)
    assert len(before.pictures) == 2


@pytest.mark.parametrize("options,message", [
    ({"samples": 0}, "greater than or equal to 1"), ({"samples": 9}, "less than or equal to 8"),
    ({"seed": -1}, "greater than or equal to 0"), ({"samples": "many"}, "valid integer"),
])
def test_bad_options(identity_ctx, options, message):
    with pytest.raises(InputError, match=message):
        run("colorize", Picture(np.zeros((16, 16, 1), np.uint8), None, "PNG"), options, identity_ctx)


def test_command_line_writes_one_file_per_sample(tmp_path, identity_models, monkeypatch):
    monkeypatch.setenv("RESTORE_MODELS_DIR", str(identity_models))
    src = tmp_path / "old photo.jpg"
    Image.fromarray((smooth_image(40, 60).mean(axis=2) * 255).astype(np.uint8)).save(src)
    runner = CliRunner()
    result = runner.invoke(app, ["colorize", str(src), "-o", str(tmp_path / "out"), "--samples", "3", "--seed", "5"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["old photo.jpg", "old photo_1.jpg", "old photo_2.jpg"]
    picture = read_image(tmp_path / "out" / "old photo_1.jpg")
    assert picture.color.shape == (40, 60, 3) and picture.format == "JPEG"
    result = runner.invoke(app, ["colorize", str(src), "-o", "-", "--samples", "2"])
    assert result.exit_code == 1 and "cannot go to stdout" in result.output
    result = runner.invoke(app, ["batch", str(tmp_path), str(tmp_path / "b"), "--task", "colorize", "--include", "*.jpg",
                                 "--options", '{"samples": 2}'])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "b").glob("*.jpg")) == ["old photo.jpg", "old photo_1.jpg"]
