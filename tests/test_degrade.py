"""The realistic degradation synthesizer the denoiser trains on: each stage does what it must."""
import numpy as np
import pytest

pytest.importorskip("torch")  # the training package (the train extra)

from restore.training import degrade as d  # noqa: E402

from conftest import smooth_image  # noqa: E402


def psnr(a, b):
    return 10 * np.log10(1 / np.mean((a.astype(np.float64) - b) ** 2))


def test_tone_curve_and_gamma_round_trip():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    assert np.allclose(d.tone(d.inverse_tone(x)), x, atol=1e-5)
    assert np.allclose(d.from_linear(d.to_linear(x)), x, atol=1e-4)
    linear = d.to_linear(x)
    assert linear[50] < 0.5 * x[50]  # gamma darkens the mid-tones: linear light is not sRGB
    assert np.all(np.diff(linear) >= 0)


def test_colour_matrix_keeps_gray_and_inverts():
    rng = np.random.default_rng(0)
    m = d.random_rgb_to_cam(rng)
    assert np.allclose(m.sum(axis=1), 1, atol=1e-5)  # gray stays gray before white balance
    image = smooth_image(16, 16)
    assert np.allclose(d.apply_matrix(d.apply_matrix(image, m), np.linalg.inv(m)), image, atol=1e-4)
    gains = d.random_gains(rng)
    assert gains.shape == (3,) and 1.4 < gains[0] / gains[1] < 2.5 and 1.4 < gains[2] / gains[1] < 2.0


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
@pytest.mark.parametrize("method", ["bilinear", "ea", "vng"])
def test_mosaic_then_demosaic_is_close_to_the_clean_image(pattern, method):
    image = smooth_image(64, 96)
    raw = d.mosaic(image, pattern)
    assert raw.shape == (64, 96)
    # Each pixel keeps exactly the one colour its filter passes.
    first = {"R": 0, "G": 1, "B": 2}[pattern[0]]
    assert raw[0, 0] == image[0, 0, first]
    out = d.demosaic(raw, pattern, method)
    assert out.shape == image.shape
    assert psnr(out[2:-2, 2:-2], image[2:-2, 2:-2]) > 35  # smooth colour survives; a wrong pattern would not


def test_shot_noise_variance_grows_with_intensity():
    rng = np.random.default_rng(1)
    levels = np.array([0.05, 0.2, 0.8], np.float32)
    raw = np.repeat(levels[:, None], 20000, axis=1)
    noisy = d.shot_read_noise(raw, shot=0.01, read=1e-5, rng=rng)
    variance = (noisy - raw).var(axis=1)
    assert variance[0] < variance[1] < variance[2]
    assert variance == pytest.approx(0.01 * levels + 1e-5, rel=0.05)
    shot, read = zip(*(d.random_noise_levels(rng) for _ in range(500)))
    assert min(shot) < 1e-4 and max(shot) > 5e-3  # from base ISO to high ISO
    assert np.corrcoef(np.log(shot), np.log(read))[0, 1] > 0.9  # read noise rises with the gain too


def test_jpeg_round_trips():
    image = smooth_image(64, 64)
    high, low = d.jpeg(image, 95), d.jpeg(image, 30)
    assert high.shape == image.shape and high.dtype == np.float32 and 0 <= low.min() and low.max() <= 1
    assert psnr(high, image) > 38 and psnr(high, image) > psnr(low, image)
    u8 = np.round(image * 255) / 255
    assert np.abs(d.jpeg(u8, 95) - u8).max() < 0.1  # a round trip, not a new picture


def test_camera_without_noise_is_close_to_the_photo_and_with_noise_is_not():
    image = smooth_image(64, 64)
    rng = np.random.default_rng(3)
    for _ in range(5):
        camera = d.Camera.draw(rng)
        clean = camera.shoot(image, None)
        assert psnr(np.clip(clean, 0, 1), image) > 28  # white balance, matrix and tone undo each other
        noisy = camera.shoot(image, np.random.default_rng(0))
        assert not np.array_equal(noisy, clean)
        assert np.array_equal(camera.shoot(image, None), clean)  # the filter is part of the camera's draw


def test_correlated_chroma_and_grain_noise():
    rng = np.random.default_rng(4)
    noise = d.correlated_noise((128, 128, 3), rng)
    assert noise.std() == pytest.approx(1, rel=1e-3)
    neighbours = np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1]
    assert neighbours > 0.3  # i.i.d. noise would give about 0
    flat = np.full((128, 128, 3), 0.5, np.float32)
    out = d.chroma_heavy(flat, np.random.default_rng(5)) - flat
    luma = out @ d._LUMA
    chroma = out - luma[..., None]
    assert chroma.std() > luma.std()
    dark, mid = (d.film_grain(np.full((128, 128, 3), v, np.float32), np.random.default_rng(6)) - v for v in (0.02, 0.5))
    assert mid.std() > 1.5 * dark.std()  # grain is strongest in the mid-tones


def test_gaussian_protocols():
    clean = np.full((64, 64, 3), 0.02, np.float32)
    rng = np.random.default_rng(7)
    paper, files = d.gaussian(clean, 50, False, rng), d.gaussian(clean, 50, True, rng)
    assert paper.min() < 0 and (paper - clean).std() * 255 == pytest.approx(50, rel=0.05)  # float, unclipped
    assert files.min() >= 0 and np.allclose(files * 255, np.round(files * 255), atol=1e-4)  # clipped, 8-bit


def test_the_mix_is_seeded_covers_every_kind_and_keeps_gray_gray():
    image = smooth_image(40, 40)
    first = [d.degrade(image, np.random.default_rng(9)) for _ in range(2)]
    assert np.array_equal(first[0][0], first[1][0]) and first[0][2] == first[1][2]  # seeded: reproducible
    rng = np.random.default_rng(10)
    kinds, gray = set(), 0
    for _ in range(300):
        noisy, target, kind = d.degrade(image, rng)
        kinds.add(kind)
        assert noisy.shape == target.shape == image.shape and noisy.dtype == target.dtype == np.float32
        assert 0 <= target.min() and target.max() <= 1
        if kind == "clean":
            assert np.array_equal(noisy, target)
        if np.array_equal(target[..., 0], target[..., 2]):
            gray += 1
            assert np.array_equal(noisy[..., 0], noisy[..., 2])  # one noise field in every channel
    assert kinds == set(d.KINDS)
    assert 20 < gray < 90  # about 15% gray
    only = d.Mix(camera=0, gaussian=1, correlated=0, chroma=0, grain=0, jpeg=0, clean=0)
    assert {d.degrade(image, rng, only)[2] for _ in range(20)} == {"gaussian"}
