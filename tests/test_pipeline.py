import numpy as np
import pytest

from conftest import smooth_image
from restore.errors import InputError
from restore.io import Picture
from restore.pipeline import MAX_CHAIN, parse_tasks, plan, run
from restore.settings import Settings
from restore.tasks.base import Context


def picture(color, alpha=None, fmt="PNG"):
    return Picture(color=color, alpha=alpha, format=fmt)


def u8(img):
    return np.round(img * 255).astype(np.uint8)


@pytest.mark.parametrize("channels,dtype", [(3, np.uint8), (1, np.uint8), (3, np.uint16), (1, np.uint16)])
def test_output_keeps_size_depth_alpha_and_format(identity_ctx, channels, dtype):
    top = np.iinfo(dtype).max
    color = np.round(smooth_image(37, 53)[..., :channels] * top).astype(dtype)
    alpha = np.full(color.shape[:2], top // 2, dtype)
    result = run("denoise", picture(color, alpha, "TIFF"), {}, identity_ctx)
    out = result.picture
    assert out.color.shape == color.shape and out.color.dtype == dtype
    assert out.alpha is alpha and out.format == "TIFF"
    np.testing.assert_array_equal(out.color, color)  # the identity model changes nothing, tiles or not
    assert result.metrics["tasks"][0]["providers"] == ["CPUExecutionProvider"]
    assert result.metrics["width"] == 53 and result.metrics["height"] == 37


def test_strength_zero_returns_the_input(identity_ctx):
    color = u8(smooth_image())
    result = run("denoise", picture(color), {"strength": 0}, identity_ctx)
    np.testing.assert_array_equal(result.picture.color, color)
    assert "model" not in result.metrics["tasks"][0]  # no session was needed


@pytest.mark.parametrize(
    "tasks,options,message",
    [
        ("sharpen", {}, "unknown task 'sharpen'; choose from denoise, dewatermark"),
        ("", {}, "no task given"),
        (" , ", {}, "no task given"),
        ("denoise,,denoise", {}, "an empty name"),
        (",".join(["denoise"] * (MAX_CHAIN + 1)), {}, f"a chain of {MAX_CHAIN + 1} tasks; the limit is {MAX_CHAIN}"),
        ("colorize,colorize", {"samples": 3}, "makes 9 images per input; the limit is 8"),
        ("denoise", {"strengthh": 3}, "unknown option(s) strengthh"),
        ("denoise", {"strength": 1.5}, "less than or equal to 1"),
        ("denoise", {"strength": "loud"}, "bad options for denoise"),
        ("denoise", {"sigma": 25}, "sigma (25) was replaced by strength"),
        ("denoise", {"format": "gif"}, "unknown format 'gif'"),
    ],
)
def test_bad_requests_are_input_errors(identity_ctx, tasks, options, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(tasks, picture(u8(smooth_image(16, 16))), options, identity_ctx)


def test_chain_parsing_and_old_option_values():
    assert parse_tasks("denoise, denoise") == ("denoise", "denoise")
    assert parse_tasks(["denoise"]) == ("denoise",)
    assert plan("denoise", {"sigma": "auto"}).options[0].strength == 1.0  # the old default still works
    assert plan("colorize,denoise", {"samples": 4, "format": "PNG"}).results == 4


@pytest.mark.parametrize("channels,dtype", [(3, np.uint8), (1, np.uint16)])
def test_dewatermark_keeps_unmarked_pixels_and_reports_the_marked_fraction(identity_ctx, channels, dtype):
    top = np.iinfo(dtype).max
    color = np.zeros((40, 60, channels), dtype)
    color[:, :15] = top  # a quarter of the image is bright: the tiny model's "mask" there is 1
    result = run("dewatermark", picture(color), {}, identity_ctx)
    out = result.picture.color
    np.testing.assert_array_equal(out[:, 15:], color[:, 15:])  # found nothing there: exactly as it was
    assert out.dtype == dtype and (out[:, :15] < top).all()  # repainted, half from the dark surround
    assert result.metrics["tasks"][0]["watermarked_fraction"] == pytest.approx(0.25)


def test_found_pixels_mix_the_model_repaint_with_inpainting():
    """Inpainting's share is high where the photo around a mark is smooth and low where it is textured."""
    import cv2

    from restore.tasks.dewatermark import INPAINT_SMOOTH, INPAINT_TEXTURED, _blend_inpainting

    rng = np.random.default_rng(0)
    image = np.full((3, 32, 64), 0.5, np.float32)
    image[:, :, 32:] = rng.random((3, 32, 32), dtype=np.float32)  # left half flat, right half noise
    restored = rng.random((3, 32, 64), dtype=np.float32)
    found = np.zeros((32, 64), bool)
    found[12:18, 8:20] = True  # on the flat half
    found[14:17, 46:49] = True  # on the noise
    out = _blend_inpainting(image, restored, found)
    np.testing.assert_array_equal(out[:, ~found], restored[:, ~found])
    filled = cv2.inpaint(u8(image.transpose(1, 2, 0)), found.astype(np.uint8), 3, cv2.INPAINT_NS).transpose(2, 0, 1) / 255
    for share, where in ((INPAINT_SMOOTH, (slice(None), slice(12, 18), slice(8, 20))),
                         (INPAINT_TEXTURED, (slice(None), slice(14, 17), slice(46, 49)))):
        np.testing.assert_allclose(out[where], (1 - share) * restored[where] + share * filled[where], atol=1e-6)
    assert _blend_inpainting(image, restored, np.zeros_like(found)) is restored


def test_the_ensemble_averages_the_photo_and_its_half_turn():
    """A model that calls the top-left quadrant of whatever it sees marked and repaints it black: on the
    half-turned photo it finds the bottom-right one. The mean mask is 1/2 on both, the mean output moves
    each a quarter of the way to black, and the two other quadrants come back exactly as they were."""
    from restore.tasks.dewatermark import dewatermark_fn

    class QuadrantModel:
        def outputs(self, image, hint):
            mask = np.zeros_like(hint)
            mask[..., :8, :8] = 1
            return mask * 0 + (1 - mask) * image, mask

    image = np.random.default_rng(0).uniform(0.2, 0.8, (1, 3, 16, 16)).astype(np.float32)
    out = dewatermark_fn(QuadrantModel(), hinted=False, ensemble=True)(image)
    color, mask = out[:, :3], out[:, 3]
    for rows, cols in ((slice(0, 8), slice(0, 8)), (slice(8, 16), slice(8, 16))):
        np.testing.assert_allclose(mask[..., rows, cols], 0.5)
        np.testing.assert_allclose(color[..., rows, cols], 0.75 * image[..., rows, cols], rtol=1e-6)
    for rows, cols in ((slice(0, 8), slice(8, 16)), (slice(8, 16), slice(0, 8))):
        np.testing.assert_array_equal(color[..., rows, cols], image[..., rows, cols])
        assert (mask[..., rows, cols] == 0).all()
    single = dewatermark_fn(QuadrantModel(), hinted=False, ensemble=False)(image)
    assert (single[:, 3, :8, :8] == 1).all() and (single[:, 3, 8:, 8:] == 0).all()


def test_the_ensemble_is_an_option(identity_ctx):
    color = u8(smooth_image(32, 48))
    runs = {flag: run("dewatermark", picture(color), {"ensemble": flag}, identity_ctx) for flag in (True, False)}
    assert runs[True].metrics["tasks"][0]["ensemble"] and not runs[False].metrics["tasks"][0]["ensemble"]
    # The tiny model works pixel by pixel, so turning the photo changes nothing it computes (but rounding).
    np.testing.assert_allclose(runs[True].picture.color, runs[False].picture.color, atol=1)
    with pytest.raises(InputError, match="ensemble"):
        run("dewatermark", picture(color), {"ensemble": "sometimes"}, identity_ctx)


def test_chains_run_in_order(blur_models):
    """A chain is its steps one after the other, in the order given: with a blur for denoise and the tiny
    dewatermark model (which repaints bright pixels from their surroundings) the two orders differ."""
    ctx = Context.create(Settings(models_dir=blur_models, device="cpu", threads=1))
    color = u8(smooth_image(32, 48))
    color[10:14, 20:30] = 255  # a bright bar: dewatermark repaints it, denoise smears it first
    chained = run("dewatermark,denoise", picture(color), {"strength": 1}, ctx)
    first = run("dewatermark", picture(color), {}, ctx).picture
    by_hand = run("denoise", first, {}, ctx).picture
    np.testing.assert_array_equal(chained.picture.color, by_hand.color)
    reverse = run("denoise,dewatermark", picture(color), {}, ctx)
    assert not np.array_equal(reverse.picture.color, chained.picture.color)
    assert [step["task"] for step in chained.metrics["tasks"]] == ["dewatermark", "denoise"]


def test_a_task_repeated_in_a_chain_keeps_each_steps_metrics(identity_ctx):
    result = run("denoise,denoise", picture(u8(smooth_image(16, 16))), {}, identity_ctx)
    assert [step["task"] for step in result.metrics["tasks"]] == ["denoise", "denoise"]


def test_a_user_mask_guides_dewatermark(identity_ctx):
    color = np.zeros((40, 60, 3), np.uint8)
    hint = np.zeros((40, 60, 1), np.uint8)
    hint[:20] = 255  # the user marks the top half
    result = run("dewatermark", picture(color), {}, identity_ctx, {"mask": picture(hint)})
    metrics = result.metrics["tasks"][0]
    assert metrics["guided"] and metrics["watermarked_fraction"] == pytest.approx(0.5)
    with pytest.raises(InputError, match="the mask is 60x20, the image 60x40"):
        run("dewatermark", picture(color), {}, identity_ctx, {"mask": picture(hint[:20])})
    with pytest.raises(InputError, match="a mask is used only by dewatermark"):
        run("denoise", picture(color), {}, identity_ctx, {"mask": picture(hint)})
    with pytest.raises(InputError, match="unknown guidance 'scribble'"):
        plan("denoise", {}, ("scribble",))
