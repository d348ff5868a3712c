"""What an encoded result is: its format, media type and file suffix, told from its first bytes."""
from __future__ import annotations

MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff", "BMP": "image/bmp"}


def format_of(blob: bytes) -> str:
    if blob.startswith(b"\x89PNG"):
        return "PNG"
    if blob.startswith(b"\xff\xd8"):
        return "JPEG"
    if blob[:4] == b"RIFF" and blob[8:12] == b"WEBP":
        return "WEBP"
    if blob[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if blob.startswith(b"BM"):
        return "BMP"
    return "BIN"


def media_type(blob: bytes) -> str:
    return MEDIA_TYPES.get(format_of(blob), "application/octet-stream")


def suffix(blob: bytes) -> str:
    return {"JPEG": "jpg"}.get(format_of(blob), format_of(blob).lower())
