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
    assert result.metrics["tasks"]["denoise"]["sigma_estimated"] == pytest.approx(25, rel=0.25)


def test_tiled_and_whole_image_agree():
    clean = to_float(read_image(SAMPLES / "clean" / "astronaut.png"))
    noisy = Picture(noisy_u8(clean, 25), None, "PNG")
    whole = Context.create(Settings(models_dir=None, tile_size=512, device="cpu"))
    tiled = Context.create(Settings(models_dir=None, tile_size=256, tile_overlap=32, device="cpu"))
    a = run("denoise", noisy, {}, whole).picture.color / 255.0
    b = run("denoise", noisy, {}, tiled).picture.color / 255.0  # 3x3 tiles
    assert psnr(a, b) > 40
    assert psnr(b, clean) == pytest.approx(psnr(a, clean), abs=0.1)


def test_fixed_sigma_controls_strength(shipped_ctx, crop):
    noisy = Picture(noisy_u8(crop, 25), None, "PNG")
    outputs = {s: run("denoise", noisy, {"sigma": s}, shipped_ctx) for s in (8, 16, "auto", 50)}
    residual = {s: np.abs(r.picture.color / 255.0 - noisy.color / 255.0).mean() for s, r in outputs.items()}
    assert residual[8] < residual[16] < residual["auto"]  # below the estimated level: gentler
    assert residual[50] == residual["auto"]  # the blind model already removes all it finds
    assert outputs[8].metrics["tasks"]["denoise"]["strength"] == pytest.approx(8 / 25, rel=0.15)
