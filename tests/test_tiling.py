import tracemalloc

import numpy as np
import pytest

from restore.tiling import Tiler, fitted, ramps, starts, tile_for_budget, tiled_run


def box3(x):
    """A 3x3 mean filter with reflected borders, like a one-layer convolutional model."""
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="symmetric")
    h, w = x.shape[2:]
    return sum(p[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9


@pytest.mark.parametrize("length,tile,overlap", [(1000, 256, 32), (257, 256, 32), (100, 256, 32), (4321, 512, 64)])
def test_ramps_sum_to_one_and_tiles_cover(length, tile, overlap):
    offsets = starts(length, tile, overlap)
    weights = ramps(length, tile, offsets)
    total = np.zeros(length)
    for s, w in zip(offsets, weights):
        assert len(w) <= tile and s + len(w) <= length
        total[s : s + len(w)] += w
    np.testing.assert_allclose(total, 1, atol=1e-6)
    assert all(offsets[i] + tile - offsets[i + 1] >= overlap for i in range(len(offsets) - 1))


@pytest.mark.parametrize("length,tile,overlap,multiple", [(2048, 512, 32, 16), (1000, 256, 32, 32), (4321, 512, 64, 16),
                                                          (513, 512, 32, 16), (300, 512, 32, 16), (7001, 96, 8, 8)])
def test_fitted_tiles_are_no_bigger_than_needed(length, tile, overlap, multiple):
    side = fitted(length, tile, overlap, multiple)
    assert side <= tile and side % multiple == 0
    offsets = starts(length, side, overlap)
    assert len(offsets) == len(starts(length, tile, overlap))  # no more tiles than before
    assert offsets[-1] + min(side, length - offsets[-1]) == length
    assert all(offsets[i] + side - offsets[i + 1] >= overlap for i in range(len(offsets) - 1))
    if length > tile:
        assert len(starts(length, side - multiple, overlap)) > len(offsets)  # any smaller needs another tile


def test_a_2048_photo_takes_tiles_of_448():
    assert fitted(2048, 512, 32, 16) == 448


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shape", [(700, 901, 3), (5, 7, 1), (256, 256, 3)])
def test_identity_is_exact(dtype, shape):
    rng = np.random.default_rng(0)
    img = (rng.random(shape) * (np.iinfo(dtype).max if dtype != np.float32 else 1)).astype(dtype)
    out = tiled_run(img, lambda x: x, Tiler(128, 16, 16))
    assert out.dtype == img.dtype and out.shape == img.shape
    if dtype == np.float32:  # blended floats may differ in the last bit
        np.testing.assert_allclose(out, img, atol=1e-6)
    else:
        np.testing.assert_array_equal(out, img)


def test_tiled_agrees_with_whole_image():
    rng = np.random.default_rng(1)
    img = rng.random((300, 410, 3)).astype(np.float32)
    whole = box3(img.transpose(2, 0, 1)[None])[0].transpose(1, 2, 0)
    tiled = tiled_run(img, box3, Tiler(64, 16, 8))
    diff = np.abs(tiled - whole)
    # Each tile is exact away from its cut edges; the ramp gives those edge pixels little weight.
    assert diff.max() < 0.05 and diff.mean() < 1e-3
    assert np.abs(tiled_run(img, box3, Tiler(512, 16, 8)) - whole).max() < 1e-6  # one tile: exact


def test_tiles_are_padded_to_the_model_stride():
    seen = []

    def fn(x):
        seen.append(x.shape)
        return x

    tiled_run(np.zeros((50, 70, 3), np.uint8), fn, Tiler(32, 8, 16))
    assert all(s[2] % 16 == 0 and s[3] % 16 == 0 for s in seen)


def test_progress_counts_every_tile():
    calls = []
    tiled_run(np.zeros((300, 300, 1), np.float32), lambda x: x, Tiler(128, 16, 8), lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1] == len(calls) == 9


def test_tile_for_budget():
    assert tile_for_budget(2**30, 1024, 16, 512) == 512
    assert tile_for_budget(64 * 2**20, 1024, 16, 4096) == 256
    assert tile_for_budget(1, 1024, 16, 512) == 16
    with pytest.raises(ValueError):
        Tiler(100, 8, 16)


def test_memory_is_bounded_for_50_megapixels():
    """Beyond input and output, tiling a 50 MP photo holds only about one band of float rows."""
    img = np.zeros((6000, 8400, 3), np.uint8)  # 50.4 MP, 151 MB
    tracemalloc.start()
    out = tiled_run(img, lambda x: x, Tiler(512, 32, 16))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out.shape == img.shape
    extra = peak - out.nbytes
    assert extra < 200 * 2**20, f"{extra / 2**20:.0f} MiB beyond the output"


def test_a_function_may_add_channels():
    """A model that returns a mask beside the image: (H, W, C) in, (H, W, C + 1) out, same dtype."""
    img = np.random.default_rng(2).integers(0, 256, (300, 410, 3), dtype=np.uint8)

    def with_mask(x):
        return np.concatenate([x, x.mean(axis=1, keepdims=True)], axis=1)

    out = tiled_run(img, with_mask, Tiler(128, 16, 8))
    assert out.shape == (300, 410, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., :3], img)
    assert np.abs(out[..., 3].astype(int) - np.round(img.mean(axis=2)).astype(int)).max() <= 1


@pytest.mark.parametrize("shape", [(1, 5000, 3), (5000, 1, 3), (3, 4000, 1), (20, 3000, 3)])
def test_thin_images_cost_about_their_own_pixels(shape):
    """A strip is run in wide tiles, and one thinner than the stride folded into a block: the model sees
    at most about twice the strip's pixels (a square photo's tiles overlap by a few percent too), and
    the result is exact for a pixel-wise model."""
    seen = []

    def fn(x):
        seen.append(x.shape[2] * x.shape[3])
        return x * 2

    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = tiled_run(image, fn, Tiler(512, 32, 16))
    np.testing.assert_allclose(out, image * 2, rtol=1e-6)
    assert sum(seen) < 2 * shape[0] * shape[1]
    assert len(seen) <= 3
