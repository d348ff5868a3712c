"""The shipped denoiser itself: it must really denoise, tiled or not, colour and gray."""
import numpy as np
import pytest

from conftest import REPO
from restore.bench.metrics import psnr
from restore.io import Picture, read_image, to_float
from restore.pipeline import run
from restore.settings import Settings
from restore.tasks.base import Context

SAMPLES = REPO / "samples"


def noisy_u8(clean, sigma, seed=0):
    noise = np.random.default_rng(seed).normal(0, sigma / 255, clean.shape)
    return np.round(np.clip(clean + noise, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def crop():
    return to_float(read_image(SAMPLES / "clean" / "astronaut.png"))[100:292, 150:406]


@pytest.mark.parametrize("sigma,gain_db", [(15, 5), (25, 7), (50, 9)])
def test_denoises_colour_photos(shipped_ctx, crop, sigma, gain_db):
    noisy = noisy_u8(crop, sigma)
    out = run("denoise", Picture(noisy, None, "PNG"), {}, shipped_ctx).picture.color / 255.0
    assert psnr(out, crop) > psnr(noisy / 255.0, crop) + gain_db


def test_denoises_gray_photos(shipped_ctx):
    clean = to_float(read_image(SAMPLES / "clean" / "camera.png"))[100:356, 100:356]
    assert clean.shape[2] == 1
    noisy = noisy_u8(clean, 25)
    result = run("denoise", Picture(noisy, None, "PNG"), {}, shipped_ctx)
    assert result.picture.color.shape == clean.shape
    assert psnr(result.picture.color / 255.0, clean) > psnr(noisy / 255.0, clean) + 6
    assert result.metrics["tasks"][0]["noise_removed"] == pytest.approx(25, rel=0.25)  # as strong as Gaussian sigma 25


def test_tiled_and_whole_image_agree():
    clean = to_float(read_image(SAMPLES / "clean" / "astronaut.png"))
    noisy = Picture(noisy_u8(clean, 25), None, "PNG")
    whole = Context.create(Settings(models_dir=None, tile_size=512, device="cpu"))
    tiled = Context.create(Settings(models_dir=None, tile_size=256, tile_overlap=32, device="cpu"))
    a = run("denoise", noisy, {}, whole).picture.color / 255.0
    b = run("denoise", noisy, {}, tiled).picture.color / 255.0  # 3x3 tiles
    assert psnr(a, b) > 40
    assert psnr(b, clean) == pytest.approx(psnr(a, clean), abs=0.1)


def split(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(brightness, colour) of an (H, W, 3) image: the channels' mean, and what is left."""
    luma = image.mean(axis=2, keepdims=True)
    return luma, image - luma


def test_strength_takes_out_colour_noise_first_and_grain_second(shipped_ctx, crop):
    noisy = Picture(noisy_u8(crop, 25), None, "PNG")
    outputs = {s: run("denoise", noisy, {"strength": s}, shipped_ctx).picture.color / 255.0 for s in (0.0, 0.5, 1.0)}
    # Noise left, in brightness and in colour, against the clean crop.
    left = {s: [float(part.std()) for part in split(out - crop)] for s, out in outputs.items()}
    luma0, chroma0 = left[0.0]
    luma_half, chroma_half = left[0.5]
    luma1, chroma1 = left[1.0]
    assert chroma_half < 0.4 * chroma0 and chroma_half == pytest.approx(chroma1, rel=0.1)  # colour noise gone at 0.5
    assert luma_half == pytest.approx(luma0, rel=0.05)  # the grain kept at 0.5
    assert luma1 < 0.5 * luma0  # and taken out at 1
    np.testing.assert_array_equal(outputs[0.0], noisy.color / 255.0)
