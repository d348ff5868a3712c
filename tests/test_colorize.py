"""Colorization: Lab conversions, decoding, full-size composition, sampling under a seed, the command line."""
import json

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
    metrics = first.metrics["tasks"][0]
    assert metrics["samples"] == 4 and metrics["seed"] == 11 and metrics["converted_to_gray"] is False


def test_colour_input_is_made_gray_first(identity_ctx):
    colour = (smooth_image(64, 64) * 255).astype(np.uint8)
    as_gray = np.repeat(np.round(gray_of(colour / 255.0)[..., :1] * 255).astype(np.uint8), 3, axis=2)
    a = run("colorize", Picture(colour, None, "PNG"), {}, identity_ctx)
    b = run("colorize", Picture(as_gray, None, "PNG"), {}, identity_ctx)
    assert a.metrics["tasks"][0]["converted_to_gray"] is True
    assert np.abs(a.picture.color.astype(int) - b.picture.color.astype(int)).max() <= 2  # only L mattered


def test_alpha_16_bit_and_chains(identity_ctx):
    gray = (smooth_image(48, 64)[..., :1] * 65535).astype(np.uint16)
    alpha = np.full((48, 64), 40000, np.uint16)
    result = run("colorize", Picture(gray, alpha, "PNG"), {"samples": 2}, identity_ctx)
    assert result.picture.color.dtype == np.uint16 and result.picture.color.shape == (48, 64, 3)
    assert all(np.array_equal(p.alpha, alpha) for p in result.pictures)
    chained = run("colorize,denoise", Picture(gray, None, "PNG"), {"samples": 3}, identity_ctx)
    assert len(chained.pictures) == 3 and [m["task"] for m in chained.metrics["tasks"]] == ["colorize", "denoise"]
    before = run("denoise,colorize", Picture(gray, None, "PNG"), {"samples": 2, "strength": 0.5}, identity_ctx)
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


def hints_image(size, spots, alpha=True):
    """An RGBA (or RGB, black = none) image of size (w, h) with each (x, y, (r, g, b)) painted 3x3."""
    w, h = size
    image = np.zeros((h, w, 4 if alpha else 3), np.uint8)
    for x, y, rgb in spots:
        image[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2, :3] = rgb
        if alpha:
            image[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2, 3] = 255
    return image


def test_hint_parsing_and_validation():
    from restore.guidance import hints_at, hints_from, parse_colour, parse_point

    assert parse_point("12, 7, #C0392B") == (12, 7, "#C0392B")
    assert np.allclose(parse_colour("00ff80"), [0, 1, 128 / 255])
    for bad, message in (("12,7", "X,Y,#RRGGBB"), ("a,b,#ffffff", "X,Y,#RRGGBB"), ("1,2,#ffff", "six hexadecimal digits")):
        with pytest.raises(InputError, match=message):
            parse_point(bad)
    with pytest.raises(InputError, match=r"hint at 64,3 is outside the 64x48 image \(x 0-63, y 0-47\)"):
        hints_at([(64, 3, "#ff0000")], (64, 48))
    red = hints_at([(5, 6, "#ff0000")], (64, 48))
    assert (red.rows[0], red.cols[0]) == (6, 5) and red.ab[0, 0] > 70  # red: strongly positive a
    painted = read_image(encode_png(hints_image((64, 48), [(10, 10, (200, 30, 30))])))
    hints = hints_from(painted)
    assert len(hints) == 9 and set(hints.rows) == {9, 10, 11}
    no_alpha = hints_from(read_image(encode_png(hints_image((64, 48), [(10, 10, (0, 0, 200))], alpha=False))))
    assert len(no_alpha) == 9 and (no_alpha.ab[:, 1] < -50).all()  # blue: negative b; black elsewhere is no hint
    both = hints.merged(hints_at([(10, 10, "#0000ff")], (64, 48)))
    assert len(both) == 9 and both.ab[both.rows * 64 + both.cols == 10 * 64 + 10][0, 1] < -50  # the later hint wins


def encode_png(array):
    import io

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def test_hinted_pixels_get_their_colour_and_it_spreads(identity_ctx):
    from restore.bench.colorize import hint_misses
    from restore.guidance import hints_at

    gray = Picture((smooth_image(80, 120).mean(axis=2, keepdims=True) * 255).astype(np.uint8), None, "PNG")
    points = [{"x": 30, "y": 20, "color": "#d02020"}, {"x": 90, "y": 60, "color": "#2040e0"}, {"x": 60, "y": 40, "color": "#ffff00"}]
    result = run("colorize", gray, {"hints": points, "samples": 3, "seed": 4}, identity_ctx)
    hints = hints_at([(p["x"], p["y"], p["color"]) for p in points], (120, 80))
    L = lightness(gray.color)
    for picture in result.pictures:  # the user's hints hold in every sample
        assert hint_misses(picture.color / 255.0, L, hints) == 0
    plain = run("colorize", gray, {}, identity_ctx).picture.color / 255.0
    hinted = result.picture.color / 255.0
    red_a = lambda image: rgb_to_lab(image[16:25, 26:35])[..., 1].mean()  # noqa: E731 (a around the red hint)
    assert red_a(hinted) > red_a(plain) + 5  # the hint's colour reaches past its own pixel
    assert result.metrics["tasks"][0]["hinted_pixels"] == 3
    again = run("colorize", gray, {"hints": points, "samples": 3, "seed": 4}, identity_ctx)
    assert all(np.array_equal(a.color, b.color) for a, b in zip(result.pictures, again.pictures))


def test_hints_from_an_image_and_their_checks(identity_ctx):
    from restore.bench.colorize import hint_misses
    from restore.guidance import hints_from

    gray = Picture((smooth_image(48, 64).mean(axis=2, keepdims=True) * 255).astype(np.uint8), None, "PNG")
    painted = Picture(hints_image((64, 48), [(20, 20, (30, 160, 40))])[..., :3], hints_image((64, 48), [(20, 20, (30, 160, 40))])[..., 3], "PNG")
    result = run("colorize", gray, {}, identity_ctx, {"hints": painted})
    assert hint_misses(result.picture.color / 255.0, lightness(gray.color), hints_from(painted)) == 0
    with pytest.raises(InputError, match="the hints is 32x48, the image 64x48"):
        run("colorize", gray, {}, identity_ctx, {"hints": Picture(painted.color[:, :32], painted.alpha[:, :32], "PNG")})
    with pytest.raises(InputError, match="a hints is used only by colorize"):
        run("denoise", gray, {}, identity_ctx, {"hints": painted})
    with pytest.raises(InputError, match="outside the 64x48 image"):
        run("colorize", gray, {"hints": [{"x": 5, "y": 48, "color": "#ffffff"}]}, identity_ctx)
    with pytest.raises(InputError, match="hints.0.color"):
        run("colorize", gray, {"hints": [{"x": 5, "y": 4, "color": "red"}]}, identity_ctx)


def test_samples_differ_region_by_region(identity_ctx):
    """After each sample's mean colour is taken away, the samples still differ: they are not one colouring
    tinted several ways."""
    from restore.bench.colorize import diversity

    gray = Picture((smooth_image(96, 128).mean(axis=2, keepdims=True) * 255).astype(np.uint8), None, "PNG")
    outs = [p.color / 255.0 for p in run("colorize", gray, {"samples": 4, "seed": 1}, identity_ctx).pictures]
    assert diversity(outs, local=True) > 1.0


def test_command_line_hints(tmp_path, identity_models, monkeypatch):
    monkeypatch.setenv("RESTORE_MODELS_DIR", str(identity_models))
    src = tmp_path / "old.png"
    Image.fromarray((smooth_image(40, 60).mean(axis=2) * 255).astype(np.uint8)).save(src)
    Image.fromarray(hints_image((60, 40), [(10, 10, (200, 30, 30))])).save(tmp_path / "hints.png")
    runner = CliRunner()
    result = runner.invoke(app, ["colorize", str(src), "-o", str(tmp_path / "a.png"), "--hint", "5,6,#2040e0",
                                 "--hint", "50,30,#ffff00", "--hints", str(tmp_path / "hints.png")])
    assert result.exit_code == 0, result.output
    assert '"hinted_pixels": 11' in result.output
    result = runner.invoke(app, ["colorize", str(src), "-o", str(tmp_path / "b.png"), "--hint", "60,6,#2040e0"])
    assert result.exit_code == 1 and "outside the 60x40 image" in result.output and not (tmp_path / "b.png").exists()
    result = runner.invoke(app, ["colorize", str(src), "-o", str(tmp_path / "b.png"), "--hint", "5;6;blue"])
    assert result.exit_code == 1 and "X,Y,#RRGGBB" in result.output
    hints_dir = tmp_path / "hints"
    hints_dir.mkdir()
    Image.fromarray(hints_image((60, 40), [(10, 10, (200, 30, 30))])).save(hints_dir / "old.png")
    result = runner.invoke(app, ["batch", str(tmp_path), str(tmp_path / "out"), "--task", "colorize", "--include", "old.png",
                                 "--hints", str(hints_dir)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "restore-summary.json").read_text())
    assert summary["files"][0]["metrics"]["tasks"][0]["hinted_pixels"] == 9


@pytest.mark.parametrize("shape", [(9, 6), (6, 9), (1, 7), (5, 1)])
def test_hint_spread_is_the_diffusions_steady_state(shape):
    """Every free cell ends as the weighted mean of its neighbours and of 0 (the pull); fixed cells keep
    their value; a correction fades across a lightness edge."""
    rng = np.random.default_rng(0)
    cells = rng.uniform(0, 100, shape)
    fixed = np.zeros(shape, bool)
    fixed.flat[rng.choice(fixed.size, 2, replace=False)] = True
    pinned = np.where(fixed, rng.uniform(-40, 40, (2, *shape)), 0.0)
    r = colorize.spread(pinned, fixed, cells)
    assert np.allclose(r[:, fixed], pinned[:, fixed])
    weight = lambda a, b: np.exp(-((a - b) ** 2) / (2 * colorize.SPREAD_L**2))  # noqa: E731
    h, w = shape
    for y, x in zip(*np.nonzero(~fixed)):
        near = [(y + dy, x + dx) for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)) if 0 <= y + dy < h and 0 <= x + dx < w]
        ws = np.array([weight(cells[y, x], cells[n]) for n in near])
        mean = sum(wi * r[:, n[0], n[1]] for wi, n in zip(ws, near)) / (colorize.SPREAD_PULL + ws.sum())
        assert np.allclose(r[:, y, x], mean, atol=1e-9)


def test_hint_spread_stops_at_edges():
    cells = np.full((8, 8), 30.0)
    cells[:, 4:] = 90.0  # a strong lightness edge down the middle
    fixed = np.zeros((8, 8), bool)
    fixed[4, 1] = True
    pinned = np.zeros((2, 8, 8))
    pinned[:, 4, 1] = 50.0
    r = colorize.spread(pinned, fixed, cells)
    assert r[0, :, :4].min() > 45 and r[0, :, 4:].max() < 0.25 * r[0, :, :4].min()
