"""Decode and encode images: size and pixel limits, formats, EXIF orientation, alpha, 16-bit, gray.

Every input is untrusted. read_image checks the byte size, then the header's width and height, and only
then decodes; anything wrong with the input comes out as InputError with a message a user can act on.
"""

from __future__ import annotations

import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import ExifTags, Image

from restore.errors import InputError, RestoreError, TooLarge

# Pillow's own bomb guard is a process-wide global read inside Image.open: it warns above 89.5 Mpx and
# refuses above twice that, so it would nag about images our limit allows and override any higher
# Limits.max_pixels. Setting it per call would race between threads, so it is switched off once here;
# read_image checks Limits.max_pixels from the header before anything is decoded. The price: other code in
# the process that opens untrusted images with Pillow directly, bypassing read_image, has no guard.
Image.MAX_IMAGE_PIXELS = None

FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tif": "TIFF", "tiff": "TIFF", "bmp": "BMP"}
_ACCEPTED = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
_ACCEPTED_NAMES = "PNG, JPEG, WEBP, TIFF or BMP"

# Undo what each EXIF orientation says was done to the stored pixels (as ImageOps.exif_transpose does);
# only the first two axes move, so the same function serves (H, W, C) colour and (H, W) alpha.
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 256 * 2**20  # encoded file size
    max_pixels: int = 120_000_000  # width*height, checked from the header before any full decode


@dataclass
class Picture:
    """A decoded image, orientation applied. Guarantees: color is (H, W, 3) RGB or (H, W, 1) gray,
    dtype uint8 or uint16; alpha is None or (H, W) of the same dtype."""

    color: np.ndarray
    alpha: np.ndarray | None
    format: str  # "PNG" | "JPEG" | "WEBP" | "TIFF" | "BMP" (the container it came in)
    icc_profile: bytes | None = None

    def __post_init__(self) -> None:
        c = self.color
        if c.ndim != 3 or c.shape[2] not in (1, 3) or c.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"color must be (H, W, 1 or 3) uint8 or uint16, got {c.shape} {c.dtype}")
        if self.alpha is not None and (self.alpha.shape != c.shape[:2] or self.alpha.dtype != c.dtype):
            raise ValueError(f"alpha must be {c.shape[:2]} {c.dtype}, got {self.alpha.shape} {self.alpha.dtype}")

    @property
    def bits(self) -> int:
        return 16 if self.color.dtype == np.uint16 else 8

    @property
    def is_gray(self) -> bool:
        return self.color.shape[2] == 1

    @property
    def size(self) -> tuple[int, int]:
        return self.color.shape[1], self.color.shape[0]


def format_for_path(path: str | os.PathLike) -> str | None:
    return FORMATS.get(Path(path).suffix.lower().lstrip("."))


def _human(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n:,} bytes"


def _read_bytes(source: str | os.PathLike | bytes | BinaryIO, max_bytes: int) -> tuple[bytes, str]:
    """The encoded bytes and a name for messages; never reads more than max_bytes + 1 bytes."""
    name, size = "input", None  # size: the whole input's, where known without reading it all
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        size = len(data)
    elif isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            with open(source, "rb") as f:
                size = os.fstat(f.fileno()).st_size  # 0 for pipes and devices, hence the check below too
                data = f.read(max_bytes + 1) if size <= max_bytes else b""
        except OSError as e:
            raise InputError(f"cannot read {name}: {e.strerror or e}") from e
    else:
        data = source.read(max_bytes + 1)
    if len(data) > max_bytes or (size or 0) > max_bytes:
        actual = _human(size) if size and size >= len(data) else f"over {_human(max_bytes)}"
        raise TooLarge(f"{name} is {actual}; the limit is {_human(max_bytes)}")
    if not data:
        raise InputError(f"{name} is an empty file")
    return data, name


@dataclass(frozen=True)
class Header:
    """What an image's header says, read without decoding its pixels."""

    size: tuple[int, int]  # (width, height), upright
    format: str
    channels: int  # colour and alpha together
    bits: int

    @property
    def decoded_bytes(self) -> int:
        """Memory its decoded pixels take."""
        return self.size[0] * self.size[1] * self.channels * self.bits // 8


def _open(data: bytes, name: str, limits: Limits) -> tuple[Image.Image, str]:
    """Pillow's lazy image (header parsed, no pixels) and its format, checked: one of ours, within the
    pixel limit, one frame, integer samples."""
    _check_pixels(name, _webp_size(data), limits)  # Pillow's WebP reader allocates its canvas at open time
    # Pillow's decoders report hostile input with a zoo of exception types (OSError, SyntaxError,
    # struct.error, ValueError, EOFError, ...); each means the file cannot be used, so all become InputError.
    try:
        # Lazy: parses the header only. Only our five formats' parsers see untrusted bytes; other plugins
        # have allocated memory from hostile headers at open time (CVE-2021-27921..27923: BLP, ICNS, ICO).
        im = Image.open(io.BytesIO(data), formats=list(_ACCEPTED))
    except Image.UnidentifiedImageError:
        raise _unreadable(name, data) from None
    except Exception as e:
        raise InputError(f"{name} has a corrupt image header ({e})") from e
    try:
        # Pillow names a JPEG with a second (preview or stereo) picture appended MPO; phones write many.
        fmt = "JPEG" if im.format == "MPO" else im.format
        _check_pixels(name, im.size, limits)
        if im.mode == "F":
            raise InputError(f"{name} has 32-bit float samples; convert it to 8 or 16-bit integers")
        frames = getattr(im, "n_frames", 1) if fmt != "JPEG" else 1
        if frames > 1:
            raise InputError(f"{name} holds {frames} frames or pages (an animation or a multi-page {fmt}); restore takes one "
                             "picture per file: save the frame or page you want as its own file")
    except InputError:
        im.close()
        raise
    except Exception as e:
        im.close()
        raise InputError(f"{name} has a corrupt image header ({e})") from e
    return im, fmt


def probe(source: str | os.PathLike | bytes | BinaryIO, limits: Limits = Limits()) -> Header:
    """The header's facts, checked as read_image checks them, without decoding the pixels: what the
    service checks an upload by when decoding it would cost too much memory."""
    data, name = _read_bytes(source, limits.max_bytes)
    im, fmt = _open(data, name, limits)
    with im:
        try:
            turned = _header_exif(im).get(ExifTags.Base.Orientation) in (5, 6, 7, 8)
        except Exception:  # an unreadable EXIF block: the pixels may still decode; read_image will tell
            turned = False
        bits = 16 if im.mode.startswith("I") or _wide_gray(im, data) is not None else 8
        size = im.size[::-1] if turned else im.size
        return Header(size, fmt, _decoded_channels(im), bits)


def _decoded_channels(im: Image.Image) -> int:
    """Channels of the array decoding makes: a palette image decodes to RGB, or RGBA with transparency."""
    if im.mode in ("P", "PA"):
        return 4 if im.mode == "PA" or "transparency" in im.info else 3
    return len(im.getbands())


def _header_exif(im: Image.Image) -> Image.Exif:
    """The EXIF found before the pixels. Pillow's getexif() on a PNG decodes the whole image to look for an
    eXIf chunk after the pixel data; before them, the chunk is in im.info already."""
    if im.format != "PNG":
        return im.getexif()
    exif = Image.Exif()
    if "exif" in im.info:
        exif.load(im.info["exif"])
    return exif


def read_image(source: str | os.PathLike | bytes | BinaryIO, limits: Limits = Limits()) -> Picture:
    """Decode a PNG, JPEG, WEBP, TIFF or BMP from a path, bytes or a binary stream, upright, with its
    ICC profile. Raises InputError for anything that is not such an image within the limits."""
    data, name = _read_bytes(source, limits.max_bytes)
    im, fmt = _open(data, name, limits)
    with im:
        try:
            wide_gray = _wide_gray(im, data)
            im.load()  # also before OpenCV decodes: it finds truncation, and PNG's EXIF may follow the pixels
            orientation = im.getexif().get(ExifTags.Base.Orientation)
            icc = None if im.mode == "CMYK" else im.info.get("icc_profile")  # CMYK's does not fit the RGB made
            color, alpha = _pixels(im) if wide_gray is None else _wide_pixels(data, wide_gray)
        except InputError as e:  # readable, but not as pixels this library keeps without loss
            raise InputError(f"{name} {e}") from e
        except Exception as e:
            raise InputError(f"{name} is corrupt or truncated ({e})") from e
    upright = _UPRIGHT.get(orientation, lambda a: a)
    alpha = None if alpha is None else np.ascontiguousarray(upright(alpha))
    return Picture(np.ascontiguousarray(upright(color)), alpha, fmt, icc)


def _check_pixels(name: str, size: tuple[int, int] | None, limits: Limits) -> None:
    if size and size[0] * size[1] > limits.max_pixels:
        width, height = size
        raise TooLarge(
            f"{name} is {width}x{height} = {width * height:,} pixels; the limit is {limits.max_pixels:,} "
            "(refused without decoding)"
        )


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a WebP's first chunk (VP8X, VP8L or VP8), or None if it is not a WebP."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":  # 24-bit little-endian canvas width-1 and height-1
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":  # 14 bits each of width-1 and height-1 after the 0x2f signature byte
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":  # after the 3-byte frame tag and the start code: 14-bit width and height
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def _unreadable(name: str, data: bytes) -> InputError:
    """Why Pillow found no image, told from the magic bytes alone (its plugins' accept checks): no other
    format's parser runs."""
    Image.init()
    magic = next((f for f, (_, accept) in Image.OPEN.items() if accept and _accepts(accept, data[:16])), None)
    if magic in _ACCEPTED:
        return InputError(f"{name} has a corrupt {magic} header")
    what = f"an image in {magic} format, which is not accepted" if magic else "not a readable image"
    return InputError(f"{name} is {what}; send a {_ACCEPTED_NAMES} file")


def _accepts(accept, prefix: bytes) -> bool:
    """A plugin's check of the magic bytes; some raise on a prefix shorter than they expect (BMP's)."""
    try:
        return accept(prefix) is True
    except Exception:
        return False


def _wide_gray(im: Image.Image, data: bytes) -> bool | None:
    """For a 16-bit PNG or TIFF that Pillow would reduce to 8 bits (colour, or gray with alpha, which
    Pillow opens as RGBA): whether it is gray. None for everything Pillow decodes at full depth."""
    if im.mode not in ("RGB", "RGBA"):
        return None
    if im.format == "PNG" and data[24] == 16:  # IHDR is always first: bit depth at 24, colour type at 25
        return data[25] == 4
    if im.format == "TIFF" and max(im.tag_v2.get(258, (8,))) == 16:  # BitsPerSample
        return False
    return None


def _wide_pixels(data: bytes, gray: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(color, alpha) at 16 bits through OpenCV, which gives BGR(A) and ignores the EXIF orientation."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if bgr is None or bgr.dtype != np.uint16 or bgr.ndim != 3:
        raise ValueError("OpenCV could not decode the 16-bit pixels")
    return (bgr[..., :1] if gray else bgr[..., 2::-1]), (bgr[..., 3] if bgr.shape[2] == 4 else None)


def _pixels(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(color, alpha) from a loaded Pillow image of any mode but F."""
    if im.mode.startswith("I"):  # I;16, I;16B (big-endian), I;16L and 32-bit I: 16-bit gray
        values = np.array(im)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise InputError(f"has 32-bit integer samples from {values.min()} to {values.max()}, beyond 16 bits; convert it to 8 or 16-bit")
        gray = values.astype(np.uint16)[..., None]
        key = im.info.get("transparency")  # a 16-bit gray PNG's tRNS: the one gray value that is transparent
        return gray, (None if not isinstance(key, int) else np.where(gray[..., 0] == key, 0, 65535).astype(np.uint16))
    gray = im.mode in ("1", "L", "LA", "La")
    has_alpha = im.has_transparency_data  # an alpha band, or a transparent palette entry or colour (tRNS)
    target = ("LA" if gray else "RGBA") if has_alpha else ("L" if gray else "RGB")  # CMYK, P, PA, YCbCr...
    pixels = np.array(im if im.mode == target else im.convert(target))
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return (pixels[..., :-1], pixels[..., -1]) if has_alpha else (pixels, None)


def _to_8bit(a: np.ndarray) -> np.ndarray:
    # round(v * 255 / 65535) == round(v / 257), and v / 257 is never exactly halfway, so no tie rule is needed.
    return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _icc_for(icc: bytes | None, channels: int) -> bytes | None:
    """The profile if its colour space (ICC header bytes 16-20) fits the pixels written: a gray profile
    on colourised output, or the reverse, would make viewers misrender it."""
    return icc if icc and icc[16:20] == (b"GRAY" if channels == 1 else b"RGB ") else None


# The largest side each format can hold: WebP's 14-bit size fields, libjpeg's JPEG_MAX_DIMENSION.
_MAX_SIDE = {"WEBP": 16383, "JPEG": 65500}


def check_encodable(size: tuple[int, int], format: str) -> str:
    """The format's name if an image of this (width, height) can be written in it; InputError if not,
    so a job is refused before its work is done rather than after."""
    fmt = FORMATS.get(format.lower().lstrip("."))
    if fmt is None:
        raise InputError(f"unknown image format {format!r}; use one of {', '.join(FORMATS)}")
    side = _MAX_SIDE.get(fmt)
    if side and max(size) > side:
        raise InputError(f"{fmt} holds at most {side} px on a side and this image is {size[0]}x{size[1]}; choose PNG or TIFF")
    return fmt


def encode_image(picture: Picture, format: str | None = None, quality: int = 95) -> bytes:
    """Encode to format (default: the picture's own). 16-bit stays 16-bit in PNG and TIFF, alpha stays
    in PNG, WEBP and TIFF; JPEG and BMP get 8-bit pixels without alpha."""
    fmt = check_encodable(picture.size, format or picture.format)
    if not 1 <= quality <= 100:
        raise InputError(f"quality must be between 1 and 100, got {quality}")
    color, alpha = picture.color, (picture.alpha if fmt in ("PNG", "WEBP", "TIFF") else None)
    if picture.bits == 16 and fmt not in ("PNG", "TIFF"):
        color, alpha = _to_8bit(color), (None if alpha is None else _to_8bit(alpha))
    if color.dtype == np.uint16 and (color.shape[2] == 3 or alpha is not None):
        return _encode_wide(color, alpha, fmt, picture.icc_profile)
    pixels = color if alpha is None else np.dstack([color, alpha])
    im = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)  # L, LA, RGB, RGBA or I;16
    options: dict = {
        "JPEG": {"quality": quality, "subsampling": 0 if quality >= 90 else 2},  # 0 is 4:4:4, 2 is 4:2:0
        "WEBP": {"quality": quality, "lossless": False},
        "TIFF": {"compression": "tiff_lzw"},
    }.get(fmt, {})
    icc = _icc_for(picture.icc_profile, color.shape[2])
    if icc and fmt != "BMP":  # Pillow's BMP writer has no ICC support
        options["icc_profile"] = icc
    out = io.BytesIO()
    try:
        im.save(out, fmt, **options)
    except (OSError, ValueError) as e:  # Pillow's encoders report their limits this way
        raise RestoreError(f"cannot encode a {picture.size[0]}x{picture.size[1]} image as {fmt}: {e}") from e
    return out.getvalue()


def _encode_wide(color: np.ndarray, alpha: np.ndarray | None, fmt: str, icc: bytes | None) -> bytes:
    """16-bit RGB(A) through OpenCV, as Pillow has no 16-bit colour mode. 16-bit gray with alpha has no
    mode in either library, so it is written as RGBA with the gray repeated: no precision lost."""
    rgb = np.repeat(color, 3, axis=2) if color.shape[2] == 1 else color
    bgr = np.dstack([rgb[..., ::-1]] + ([] if alpha is None else [alpha]))
    icc = _icc_for(icc, 3)
    if icc and fmt == "PNG":  # OpenCV writes an ICC profile into PNG only; for TIFF it warns and drops it
        ok, buf = cv2.imencodeWithMetadata(".png", bgr, [cv2.IMAGE_METADATA_ICCP], [np.frombuffer(icc, np.uint8)])
    else:
        ok, buf = cv2.imencode("." + fmt.lower(), bgr)
    if not ok:
        raise RestoreError(f"OpenCV could not encode a 16-bit {fmt}")
    return buf.tobytes()


def write_image(
    picture: Picture, dest: str | os.PathLike | BinaryIO, format: str | None = None, quality: int = 95
) -> None:
    """Encode and write. For a path, format defaults to the suffix's (then the picture's own), and the
    file appears whole or not at all."""
    data = encode_image(picture, output_format(picture, dest, format), quality)
    if isinstance(dest, (str, os.PathLike)):
        atomic_write(dest, data)
    else:
        dest.write(data)


def output_format(picture: Picture, dest: str | os.PathLike | BinaryIO | None = None, format: str | None = None) -> str:
    """The format a result is written in, checked for its size: the one asked for, else the suffix of a
    destination path, else the input's own. Callers check it before the work, write_image when writing."""
    suffix = format_for_path(dest) if isinstance(dest, (str, os.PathLike)) and os.fspath(dest) != "-" else None
    return check_encodable(picture.size, format or suffix or picture.format)


def make_folder(folder: str | os.PathLike) -> None:
    """Create an output folder (and its parents) or say why it cannot be: before any work is done."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file where a folder should be, no permission, a read-only file system
        raise InputError(f"cannot create the output folder {folder}: {e.strerror or e}") from e


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes so the file appears whole or not at all."""
    path = Path(path)
    # Same folder, so os.replace is an atomic rename on one file system. os.open with 0o666 lets the umask
    # set the permissions as a plain open() would; mkstemp would leave the output readable by its owner only.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # the bytes are on disk before the name points at them
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)  # gone already after a successful replace
    except OSError as e:
        raise RestoreError(f"cannot write {path}: {e.strerror or e}") from e


def to_float(picture: Picture) -> np.ndarray:
    """The colour as (H, W, C) float32 in [0, 1]."""
    return picture.color.astype(np.float32) / np.iinfo(picture.color.dtype).max
