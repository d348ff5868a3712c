"""restore.io: every image is built in memory or in tmp_path."""
from __future__ import annotations

import io
import os
import stat
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile, ImageOps, JpegImagePlugin

from restore import io as rio
from restore.errors import InputError, RestoreError
from restore.io import (
    FORMATS,
    Limits,
    Picture,
    encode_image,
    format_for_path,
    read_image,
    to_float,
    write_image,
)

T = Image.Transpose
LOSSLESS = {"PNG", "TIFF", "BMP"}
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def rgb8(h: int = 24, w: int = 32) -> np.ndarray:
    """Smooth (so lossy codecs stay close) and asymmetric (so every flip and turn shows)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x * 255 // (w - 1), y * 255 // (h - 1), (x + 2 * y) * 255 // (w + 2 * h)]).astype(np.uint8)


def rgb16(h: int = 5, w: int = 7, channels: int = 3) -> np.ndarray:
    """Distinct 16-bit values whose low bytes differ, so a drop to 8 bits cannot go unnoticed."""
    return (np.arange(h * w * channels).reshape(h, w, channels) * 1543 + 7).astype(np.uint16)


def pil_bytes(im: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def cv2_bytes(rgb: np.ndarray, ext: str, exif: bytes | None = None, icc: bytes | None = None) -> bytes:
    """A 16-bit colour file, which only OpenCV writes; rgb is RGB(A), OpenCV wants BGR(A)."""
    bgr = np.ascontiguousarray(np.dstack([rgb[..., 2::-1], rgb[..., 3:]]))
    kinds, blobs = [], []
    for kind, blob in ((cv2.IMAGE_METADATA_EXIF, exif), (cv2.IMAGE_METADATA_ICCP, icc)):
        if blob:
            kinds.append(kind)
            blobs.append(np.frombuffer(blob, np.uint8))
    ok, buf = cv2.imencodeWithMetadata(ext, bgr, kinds, blobs)
    assert ok
    return buf.tobytes()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(width: int, height: int, depth: int, color_type: int, rows: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")


# --- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "BMP"])
def test_rgb_round_trip(fmt):
    original = rgb8()
    back = read_image(encode_image(Picture(original, None, "PNG"), fmt))
    assert back.format == fmt
    assert back.color.shape == (24, 32, 3) and back.color.dtype == np.uint8
    assert back.alpha is None and back.size == (32, 24) and back.bits == 8 and not back.is_gray
    diff = np.abs(back.color.astype(int) - original)
    assert diff.max() == 0 if fmt in LOSSLESS else diff.mean() < 3


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "BMP"])
def test_gray_stays_one_channel_where_the_format_has_gray(fmt):
    gray = rgb8()[..., :1]
    back = read_image(encode_image(Picture(gray, None, "PNG"), fmt))
    if fmt == "WEBP":  # WebP has no gray; it comes back as three equal channels
        assert back.color.shape == (24, 32, 3)
        assert np.abs(back.color.astype(int) - gray).mean() < 3
    else:
        assert back.is_gray and back.color.shape == (24, 32, 1)
        diff = np.abs(back.color.astype(int) - gray)
        assert diff.max() == 0 if fmt in LOSSLESS else diff.mean() < 3


@pytest.mark.parametrize("source_kind", ["bytes", "bytearray", "stream", "str", "path"])
def test_sources(tmp_path, source_kind):
    data = pil_bytes(Image.fromarray(rgb8()), "PNG")
    file = tmp_path / "in.png"
    file.write_bytes(data)
    source = {
        "bytes": data,
        "bytearray": bytearray(data),
        "stream": io.BytesIO(data),
        "str": str(file),
        "path": file,
    }[source_kind]
    assert np.array_equal(read_image(source).color, rgb8())


# --- orientation --------------------------------------------------------------------------------

# What turns an upright image into the stored one for each EXIF orientation (the inverse of the turn
# a viewer applies); the test checks this table against Pillow's exif_transpose as well.
STORED = {1: None, 2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM,
          5: T.TRANSPOSE, 6: T.ROTATE_90, 7: T.TRANSVERSE, 8: T.ROTATE_270}


def exif_with(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_8_bit(orientation):
    upright = rgb8(6, 10)
    stored = Image.fromarray(upright)
    if STORED[orientation] is not None:
        stored = stored.transpose(STORED[orientation])
    data = pil_bytes(stored, "PNG", exif=exif_with(orientation))
    assert np.array_equal(np.array(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))), upright)
    picture = read_image(data)
    assert picture.color.shape == (6, 10, 3)
    assert np.array_equal(picture.color, upright)
    assert picture.color.flags.c_contiguous


@pytest.mark.parametrize("fmt, options", [("TIFF", {}), ("WEBP", {"lossless": True})])
def test_exif_orientation_in_other_containers(fmt, options):
    upright = rgb8(6, 10)
    stored = Image.fromarray(upright).transpose(STORED[7])
    assert np.array_equal(read_image(pil_bytes(stored, fmt, exif=exif_with(7), **options)).color, upright)


def test_exif_orientation_jpeg_turns_alpha_too():
    upright = rgb8(8, 16)
    data = pil_bytes(Image.fromarray(upright).transpose(T.ROTATE_90), "JPEG", quality=95, exif=exif_with(6))
    picture = read_image(data)
    assert picture.color.shape == (8, 16, 3)
    assert np.abs(picture.color.astype(int) - upright).mean() < 3
    rgba = np.dstack([upright, np.arange(8 * 16, dtype=np.uint8).reshape(8, 16)])
    stored = Image.fromarray(rgba).transpose(T.ROTATE_270)
    picture = read_image(pil_bytes(stored, "PNG", exif=exif_with(8)))
    assert np.array_equal(picture.alpha, rgba[..., 3])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_16_bit_colour(orientation):
    upright = rgb16(4, 6)
    channels = [Image.fromarray(np.ascontiguousarray(upright[..., c])) for c in range(3)]
    if STORED[orientation] is not None:
        channels = [ch.transpose(STORED[orientation]) for ch in channels]
    stored = np.dstack([np.array(ch) for ch in channels])
    # libpng wants the eXIf chunk without JPEG's "Exif\0\0" prefix.
    data = cv2_bytes(stored, ".png", exif=exif_with(orientation).tobytes()[6:])
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == orientation
    picture = read_image(data)
    assert picture.color.dtype == np.uint16
    assert np.array_equal(picture.color, upright)


# --- 16 bits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_gray(fmt):
    gray = rgb16(5, 7, 1)
    picture = read_image(pil_bytes(Image.fromarray(gray[..., 0]), fmt))
    assert picture.color.dtype == np.uint16 and picture.color.shape == (5, 7, 1) and picture.bits == 16
    assert np.array_equal(picture.color, gray)
    for target in ("PNG", "TIFF"):
        back = read_image(encode_image(picture, target))
        assert back.color.dtype == np.uint16 and np.array_equal(back.color, gray)


@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_16_bit_rgb(ext):
    rgb = rgb16()
    data = cv2_bytes(rgb, ext)
    # Pillow's own 8-bit view keeps the high bytes: an independent check of the channel order.
    assert np.array_equal(np.array(Image.open(io.BytesIO(data))), (rgb >> 8).astype(np.uint8))
    picture = read_image(data)
    assert picture.format == FORMATS[ext[1:]]
    assert picture.color.dtype == np.uint16 and picture.color.shape == (5, 7, 3) and picture.alpha is None
    assert np.array_equal(picture.color, rgb)
    for target in ("PNG", "TIFF"):
        back = read_image(encode_image(picture, target))
        assert back.color.dtype == np.uint16 and np.array_equal(back.color, rgb)


def test_16_bit_rgba_png_keeps_alpha():
    rgba = rgb16(channels=4)
    picture = read_image(cv2_bytes(rgba, ".png"))
    assert picture.alpha.dtype == np.uint16
    assert np.array_equal(picture.color, rgba[..., :3]) and np.array_equal(picture.alpha, rgba[..., 3])
    back = read_image(encode_image(picture, "PNG"))
    assert np.array_equal(back.color, rgba[..., :3]) and np.array_equal(back.alpha, rgba[..., 3])


def test_16_bit_gray_with_alpha_png():
    gray, alpha = rgb16(2, 3, 1)[..., 0], rgb16(2, 3, 1)[..., 0] ^ 0xFFFF
    rows = b"".join(b"\x00" + np.dstack([gray[y], alpha[y]]).astype(">u2").tobytes() for y in range(2))
    picture = read_image(raw_png(3, 2, 16, 4, rows))
    assert picture.is_gray and picture.color.dtype == np.uint16
    assert np.array_equal(picture.color[..., 0], gray) and np.array_equal(picture.alpha, alpha)
    # Neither library writes 16-bit gray with alpha: it comes back as RGBA with the gray repeated.
    back = read_image(encode_image(picture, "PNG"))
    assert np.array_equal(back.color, np.repeat(picture.color, 3, axis=2)) and np.array_equal(back.alpha, alpha)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "BMP"])
def test_16_bit_to_8_bit_formats_rounds(fmt):
    rgb = rgb8().astype(np.uint16) * 256 + rgb8()[..., ::-1]  # smooth for lossy codecs, varied low bytes
    picture = Picture(rgb, rgb[..., 0].copy(), "PNG")
    back = read_image(encode_image(picture, fmt))
    assert back.color.dtype == np.uint8
    expected = np.rint(rgb / 65535 * 255)
    diff = np.abs(back.color.astype(int) - expected)
    assert diff.max() == 0 if fmt == "BMP" else diff.mean() < 4
    assert (back.alpha is not None) == (fmt == "WEBP")


def test_16_bit_colour_png_keeps_its_icc_profile():
    picture = read_image(cv2_bytes(rgb16(), ".png", icc=SRGB))
    assert picture.icc_profile == SRGB
    assert read_image(encode_image(picture, "PNG")).icc_profile == SRGB


# --- alpha, palette, CMYK, ICC ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF", "JPEG", "BMP"])
def test_rgba_alpha_kept_where_the_format_holds_it(fmt):
    alpha = (np.arange(24 * 32) % 256).astype(np.uint8).reshape(24, 32)
    picture = read_image(pil_bytes(Image.fromarray(np.dstack([rgb8(), alpha])), "PNG"))
    assert picture.color.shape == (24, 32, 3) and np.array_equal(picture.alpha, alpha)
    back = read_image(encode_image(picture, fmt))
    if fmt in ("JPEG", "BMP"):
        assert back.alpha is None and back.color.shape == (24, 32, 3)
    else:
        assert np.array_equal(back.alpha, alpha)  # WebP keeps alpha lossless even at lossy quality


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_la_alpha_kept(fmt):
    gray, alpha = rgb8()[..., 0], rgb8()[..., 1]
    picture = read_image(pil_bytes(Image.merge("LA", [Image.fromarray(gray), Image.fromarray(alpha)]), fmt))
    assert picture.is_gray and np.array_equal(picture.color[..., 0], gray) and np.array_equal(picture.alpha, alpha)
    encoded = encode_image(picture, fmt)
    assert Image.open(io.BytesIO(encoded)).mode == "LA"
    assert np.array_equal(read_image(encoded).alpha, alpha)


def test_palette_png_with_and_without_transparency():
    palette = Image.new("P", (4, 2))
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    palette.putdata([0, 1, 2, 0, 1, 2, 0, 1])
    opaque = read_image(pil_bytes(palette, "PNG"))
    assert opaque.alpha is None and opaque.color.shape == (2, 4, 3)
    assert opaque.color[0, 1].tolist() == [0, 255, 0] and opaque.color[0, 2].tolist() == [0, 0, 255]
    clear = read_image(pil_bytes(palette, "PNG", transparency=1))
    assert clear.color.shape == (2, 4, 3)
    assert clear.alpha.tolist() == [[255, 0, 255, 255], [0, 255, 255, 0]]


def test_gray_png_with_transparent_value_gets_alpha():
    gray = Image.fromarray(np.array([[10, 20], [20, 30]], np.uint8))
    picture = read_image(pil_bytes(gray, "PNG", transparency=20))
    assert picture.is_gray and picture.alpha.tolist() == [[255, 0], [0, 255]]


def test_bilevel_becomes_gray():
    picture = read_image(pil_bytes(Image.fromarray(rgb8()[..., 0] > 128), "PNG"))
    assert picture.is_gray and set(np.unique(picture.color)) <= {0, 255}


def test_jpeg_with_a_second_picture_is_a_jpeg():
    first, second = Image.fromarray(rgb8()), Image.fromarray(rgb8()[::-1].copy())
    data = pil_bytes(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"  # what Pillow calls it
    picture = read_image(data)
    assert picture.format == "JPEG" and np.abs(picture.color.astype(int) - rgb8()).mean() < 3


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 8), (255, 0, 0, 0))  # cyan
    cmyk.paste((0, 0, 0, 0), (8, 0, 16, 8))  # white
    cmyk_profile = SRGB[:16] + b"CMYK" + SRGB[20:]  # only the header's colour space matters here
    picture = read_image(pil_bytes(cmyk, "JPEG", quality=95, icc_profile=cmyk_profile))
    assert picture.color.shape == (8, 16, 3) and picture.color.dtype == np.uint8
    assert picture.icc_profile is None  # a CMYK profile does not describe the RGB pixels
    assert np.abs(picture.color[4, 2].astype(int) - [0, 255, 255]).max() < 8
    assert np.abs(picture.color[4, 13].astype(int) - [255, 255, 255]).max() < 8


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_icc_profile_kept(fmt):
    picture = read_image(pil_bytes(Image.fromarray(rgb8()), fmt, icc_profile=SRGB))
    assert picture.icc_profile == SRGB
    assert read_image(encode_image(picture, fmt)).icc_profile == SRGB


def test_colour_profile_not_written_onto_gray_pixels():
    picture = Picture(rgb8()[..., :1], None, "PNG", SRGB)
    assert read_image(encode_image(picture)).icc_profile is None


# --- encode options -----------------------------------------------------------------------------


def test_jpeg_quality_and_subsampling():
    picture = Picture(rgb8(64, 64), None, "JPEG")
    high, low = encode_image(picture, quality=95), encode_image(picture, quality=50)
    assert len(low) < len(high)
    assert JpegImagePlugin.get_sampling(Image.open(io.BytesIO(high))) == 0  # 4:4:4
    assert JpegImagePlugin.get_sampling(Image.open(io.BytesIO(encode_image(picture, quality=80)))) == 2  # 4:2:0


@pytest.mark.parametrize("name, expected", [("jpg", "JPEG"), ("JPEG", "JPEG"), ("Tif", "TIFF"), ("webp", "WEBP")])
def test_format_names(name, expected):
    assert Image.open(io.BytesIO(encode_image(Picture(rgb8(), None, "PNG"), name))).format == expected


@pytest.mark.parametrize("fmt, quality", [("gif", 95), ("png", 0), ("jpeg", 101)])
def test_bad_encode_options(fmt, quality):
    with pytest.raises(InputError, match="png|quality"):
        encode_image(Picture(rgb8(), None, "PNG"), fmt, quality)


def test_format_for_path():
    assert format_for_path("a/b.JPG") == "JPEG"
    assert format_for_path(Path("x.tif")) == "TIFF"
    assert format_for_path("x.gif") is None and format_for_path("noext") is None


def test_output_format_order_asked_then_suffix_then_input(tmp_path):
    picture = Picture(rgb8(), None, "WEBP")
    assert rio.output_format(picture, tmp_path / "a.png", "jpg") == "JPEG"
    assert rio.output_format(picture, tmp_path / "a.tif") == "TIFF"
    assert rio.output_format(picture, tmp_path / "noext") == "WEBP"
    assert rio.output_format(picture, "-") == rio.output_format(picture, io.BytesIO()) == "WEBP"


# --- bad input ----------------------------------------------------------------------------------


def truncated(fmt: str) -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = pil_bytes(Image.fromarray(noise), fmt)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty file"),
        (np.random.default_rng(1).bytes(2000), "not a readable image; send a PNG, JPEG"),
        (b"Dear reader,\nthis is not a picture.\n" * 20, "not a readable image"),
        (truncated("PNG"), "corrupt or truncated"),
        (truncated("JPEG"), "corrupt or truncated"),
        (pil_bytes(Image.new("P", (8, 8)), "GIF"), "an image in GIF format, which is not accepted; send a PNG"),
        (pil_bytes(Image.new("RGB", (16, 16)), "ICO"), "in ICO format, which is not accepted"),
        (pil_bytes(Image.fromarray(np.zeros((4, 4), np.float32)), "TIFF"), "float"),
    ],
    ids=["empty", "random", "text", "truncated-png", "truncated-jpeg", "gif", "ico", "float-tiff"],
)
def test_bad_input_is_refused_with_a_message(data, message):
    with pytest.raises(InputError, match=message):
        read_image(data)


def test_corrupt_png_header_is_named():
    data = bytearray(pil_bytes(Image.fromarray(rgb8()), "PNG"))
    data[25] = 9  # no such colour type
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    with pytest.raises(InputError, match="corrupt PNG header"):
        read_image(bytes(data))


def test_corrupt_png_data_is_refused():
    data = bytearray(pil_bytes(Image.fromarray(rgb8()), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 20 : idat + 40] = bytes(20)
    with pytest.raises(InputError, match="corrupt or truncated"):
        read_image(bytes(data))


def test_bad_paths(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    with pytest.raises(InputError, match=r"notes\.txt is not a readable image"):
        read_image(text)
    with pytest.raises(InputError, match="cannot read .*missing.png"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(InputError, match="cannot read"):
        read_image(tmp_path)


def test_decompression_bomb_refused_from_the_header(monkeypatch):
    data = bytearray(pil_bytes(Image.new("L", (8, 8)), "PNG"))
    data[16:24] = struct.pack(">II", 30000, 30000)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR CRC over type + body
    decodes = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decodes.append("pillow"))
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decodes.append("opencv"))
    with pytest.raises(InputError, match=r"30000x30000 = 900,000,000 pixels; the limit is 120,000,000"):
        read_image(bytes(data))
    assert decodes == []


def test_pixel_limit_is_inclusive():
    data = pil_bytes(Image.new("RGB", (5, 4)), "PNG")
    assert read_image(data, Limits(max_pixels=20)).size == (5, 4)
    with pytest.raises(InputError, match="5x4 = 20 pixels; the limit is 19"):
        read_image(data, Limits(max_pixels=19))


def test_byte_limit(tmp_path):
    data = pil_bytes(Image.fromarray(rgb8()), "PNG")
    limits = Limits(max_bytes=len(data) - 1)
    with pytest.raises(InputError, match=f"input is {len(data):,} bytes; the limit is {len(data) - 1:,} bytes"):
        read_image(data, limits)
    stream = io.BytesIO(data)
    with pytest.raises(InputError, match="input is over"):
        read_image(stream, limits)
    assert stream.tell() == len(data)  # read max_bytes + 1 and no further
    assert read_image(data, Limits(max_bytes=len(data))).size == (32, 24)


def test_large_file_refused_before_reading(tmp_path):
    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.truncate(300 * 2**20)  # sparse: no disk used, and read_image must not read it
    with pytest.raises(InputError, match=r"big\.png is 300\.0 MB; the limit is 256\.0 MB"):
        read_image(big)


# --- write_image --------------------------------------------------------------------------------


def test_write_image_to_path_is_whole_and_leaves_no_temp_file(tmp_path):
    dest = tmp_path / "out.png"
    write_image(Picture(rgb8(), None, "JPEG"), dest)  # suffix decides the format
    assert os.listdir(tmp_path) == ["out.png"]
    assert Image.open(io.BytesIO(dest.read_bytes())).format == "PNG" and np.array_equal(read_image(dest).color, rgb8())
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~umask


def test_write_image_failure_keeps_the_old_file(tmp_path, monkeypatch):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"old")

    def no_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rio.os, "replace", no_replace)
    with pytest.raises(RestoreError, match="cannot write .*out.png: No space left"):
        write_image(Picture(rgb8(), None, "PNG"), dest)
    assert os.listdir(tmp_path) == ["out.png"] and dest.read_bytes() == b"old"


def test_write_image_unknown_suffix_and_stream(tmp_path):
    write_image(Picture(rgb8(), None, "TIFF"), tmp_path / "out.dat")
    assert Image.open(io.BytesIO((tmp_path / "out.dat").read_bytes())).format == "TIFF"
    stream = io.BytesIO()
    write_image(Picture(rgb8(), None, "PNG"), stream, "webp")
    assert read_image(stream.getvalue()).format == "WEBP"
    with pytest.raises(InputError):
        write_image(Picture(rgb8(), None, "PNG"), tmp_path / "x.png", "gif")
    assert sorted(os.listdir(tmp_path)) == ["out.dat"]


def test_16_bit_gray_png_keeps_its_transparent_value():
    gray = (np.arange(12).reshape(3, 4) * 1000).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, "PNG", transparency=2000)
    picture = read_image(buf.getvalue())
    assert picture.color.dtype == np.uint16 and picture.alpha is not None
    assert picture.alpha.tolist() == np.where(gray == 2000, 0, 65535).tolist()


def test_32_bit_integer_samples_beyond_16_bits_are_refused_not_clipped():
    buf = io.BytesIO()
    Image.fromarray(np.array([[0, 70000]], np.int32), "I").save(buf, "TIFF")
    with pytest.raises(InputError, match="32-bit integer samples from 0 to 70000"):
        read_image(buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(np.array([[0, 60000]], np.int32), "I").save(buf, "TIFF")
    assert read_image(buf.getvalue()).color.max() == 60000  # within 16 bits: kept as it is


def test_format_size_limits_are_clear_errors(tmp_path):
    wide = Picture(np.zeros((2, 17000, 3), np.uint8), None, "PNG")
    with pytest.raises(InputError, match="WEBP holds at most 16383 px"):
        write_image(wide, tmp_path / "w.webp")
    rio.check_encodable((17000, 2), "png")  # PNG and TIFF take it
    with pytest.raises(InputError, match="JPEG holds at most 65500 px"):
        rio.check_encodable((2, 70000), "jpg")
    assert sorted(os.listdir(tmp_path)) == []


def test_encoder_failures_are_restore_errors(monkeypatch):
    def refuse(self, fp, format=None, **params):
        raise OSError("broken data stream")

    monkeypatch.setattr(Image.Image, "save", refuse)
    with pytest.raises(RestoreError, match="cannot encode a 5x4 image as PNG: broken data stream"):
        rio.encode_image(Picture(rgb8(4, 5), None, "PNG"))


# --- float helpers and Picture ------------------------------------------------------------------


@pytest.mark.parametrize("color", [rgb8(), rgb16(), rgb16(5, 7, 1)], ids=["8-bit", "16-bit", "16-bit-gray"])
def test_to_float_scales_to_unit_range(color):
    as_float = to_float(Picture(color, None, "PNG", SRGB))
    assert as_float.dtype == np.float32 and 0 <= as_float.min() and as_float.max() <= 1
    assert np.array_equal(np.rint(as_float * np.iinfo(color.dtype).max).astype(color.dtype), color)


def test_picture_rejects_broken_arrays():
    with pytest.raises(ValueError):
        Picture(np.zeros((2, 2, 2), np.uint8), None, "PNG")
    with pytest.raises(ValueError):
        Picture(np.zeros((2, 2, 3), np.float32), None, "PNG")
    with pytest.raises(ValueError):
        Picture(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint16), "PNG")


@pytest.mark.parametrize("lossless", [True, False])
def test_webp_size_is_read_from_the_header(lossless):
    """Pillow sets up a WebP's full canvas when opening it, so its size is checked before Image.open."""
    from restore.io import _webp_size

    buf = io.BytesIO()
    Image.new("RGB", (123, 45)).save(buf, "WEBP", lossless=lossless)
    assert _webp_size(buf.getvalue()) == (123, 45)
    buf = io.BytesIO()
    Image.new("RGBA", (67, 89), (1, 2, 3, 4)).save(buf, "WEBP", lossless=lossless)
    assert _webp_size(buf.getvalue()) == (67, 89)
    with pytest.raises(InputError, match="refused without decoding"):
        read_image(buf.getvalue(), Limits(max_pixels=67 * 89 - 1))


def test_probe_counts_the_channels_a_palette_image_decodes_to():
    def png(image):
        buf = io.BytesIO()
        image.save(buf, "PNG")
        return buf.getvalue()

    palette = Image.new("P", (64, 32))
    assert rio.probe(png(palette)).channels == 3 == rio.read_image(png(palette)).color.shape[2]
    palette.info["transparency"] = 0
    data = png(palette)
    decoded = rio.read_image(data)
    assert rio.probe(data).channels == 4 == decoded.color.shape[2] + (decoded.alpha is not None)
