"""The Python API: the kind of image that goes in comes out, through the same pipeline as the CLI."""
import io

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_image
from restore import colorize, denoise, dewatermark, run
from restore.errors import InputError
from restore.settings import Settings


@pytest.fixture
def settings(identity_models):
    return Settings(_env_file=None, models_dir=identity_models, device="cpu", threads=1)


def test_numpy_in_numpy_out(settings):
    rgb = np.round(smooth_image(40, 60) * 255).astype(np.uint8)
    out = denoise(rgb, settings=settings)
    assert isinstance(out, np.ndarray) and out.shape == rgb.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)  # the identity model
    gray16 = (smooth_image(40, 60)[..., 0] * 65535).astype(np.uint16)
    assert denoise(gray16, settings=settings).shape == (40, 60)  # (H, W) stays (H, W)
    rgba = np.dstack([rgb, np.full((40, 60), 200, np.uint8)])
    assert denoise(rgba, settings=settings)[..., 3].min() == 200  # alpha kept as a channel
    colours = colorize(gray16, samples=2, hints=[(5, 5, "#ff0000")], settings=settings)
    assert len(colours) == 2 and all(c.shape == (40, 60, 3) and c.dtype == np.uint16 for c in colours)


def test_pil_and_bytes_in_the_same_kind_out(settings):
    image = Image.fromarray(np.round(smooth_image(32, 48) * 255).astype(np.uint8))
    out = dewatermark(image, settings=settings)
    assert isinstance(out, Image.Image) and out.size == (48, 32) and out.mode == "RGB"
    buf = io.BytesIO()
    image.save(buf, "JPEG")
    jpeg = denoise(buf.getvalue(), settings=settings)
    assert isinstance(jpeg, bytes) and jpeg[:2] == b"\xff\xd8"  # the input's format
    assert denoise(buf.getvalue(), format="png", settings=settings)[:4] == b"\x89PNG"
    mask = Image.new("L", (48, 32), 255)
    assert isinstance(dewatermark(buf.getvalue(), mask=mask, settings=settings), bytes)


def test_pil_images_of_any_mode_are_read_or_refused_clearly(settings):
    rgb = Image.fromarray(np.round(smooth_image(16, 24) * 255).astype(np.uint8))
    for mode in ("YCbCr", "LAB", "HSV", "RGBX", "RGBa", "PA", "I", "I;16B", "1", "P"):
        out = denoise(rgb.convert(mode) if mode not in ("PA", "I", "I;16B") else Image.new(mode, (24, 16)), settings=settings)
        assert isinstance(out, Image.Image) and out.size == (24, 16), mode
    for image in (Image.new("F", (24, 16)), Image.fromarray(np.full((16, 24), 70000, np.int32))):
        with pytest.raises(InputError, match=f"mode {image.mode}"):
            denoise(image, settings=settings)


def test_an_output_folder_that_cannot_be_made_is_refused_before_the_work(settings, tmp_path):
    (tmp_path / "afile").write_text("")
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    with pytest.raises(InputError, match="cannot create the output folder"):
        denoise(image, output=tmp_path / "afile" / "x.png", settings=settings)


def test_paths_write_the_output_and_metrics_on_request(settings, tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(np.round(smooth_image(32, 48) * 255).astype(np.uint8)).save(src)
    written = denoise(src, output=tmp_path / "out" / "b.webp", settings=settings)
    assert written == tmp_path / "out" / "b.webp" and Image.open(written).format == "WEBP"
    out, metrics = run(np.zeros((16, 16, 3), np.uint8), "dewatermark,denoise", metrics=True, settings=settings)
    assert [m["task"] for m in metrics["tasks"]] == ["dewatermark", "denoise"]
    with pytest.raises(InputError, match="needs output=PATH"):
        denoise(src, settings=settings)
    with pytest.raises(InputError, match="must be a path, bytes, a PIL image or a numpy array"):
        denoise(3.5, settings=settings)
    with pytest.raises(InputError, match="uint8 or uint16"):
        denoise(np.zeros((8, 8, 3), np.float32), settings=settings)
