"""The Python API: restore an image given as a path, bytes, a PIL image or a numpy array, and get the
same kind back.

    from restore import denoise, dewatermark, colorize, run

    denoise("photo.jpg", output="clean.jpg")           # a path in: the result is written to output
    clean = denoise(array)                             # numpy in: numpy out, same dtype and layout
    clean = denoise(pil_image, strength=0.5)           # PIL in: PIL out
    png = dewatermark(png_bytes, mask=mask_image)      # bytes in: bytes out, in the input's format
    first, second = colorize(gray, samples=2, hints=[(120, 45, "#c0392b")])
    out, metrics = run(array, "dewatermark,denoise", metrics=True)

Errors are restore.errors.InputError (a bad image or option), ModelError and DeviceError. Each call
goes through restore.pipeline, as the command line and the service do; models are loaded once per
process and settings (device, threads, tiles) come from RESTORE_* variables unless `settings` is given.
"""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from restore.errors import InputError
from restore.io import Limits, Picture, atomic_write, encode_image, make_folder, read_image
from restore.pipeline import as_picture, plan, process, run as run_plan
from restore.settings import Settings
from restore.tasks.base import Context

Image = Any  # a path, bytes, a PIL image or a numpy array


class Restored(NamedTuple):
    result: Any  # what the call returns without metrics=True
    metrics: dict


_contexts: dict[str, Context] = {}


def _context(settings: Settings | None) -> Context:
    """One Context (so one ONNX Runtime session per model) per distinct settings, for the process."""
    settings = settings if settings is not None else Settings()
    key = settings.model_dump_json()
    if key not in _contexts:
        _contexts[key] = Context.create(settings)
    return _contexts[key]


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.")


_PIL_KEPT = {"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "CMYK"}  # what PNG (or TIFF, for CMYK) stores as it is
# Modes Pillow converts itself to one that is kept: other colour spaces, premultiplied alpha, palette with alpha.
_PIL_CONVERTED = {"RGBX": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "RGBa": "RGBA", "PA": "RGBA"}


def _picture(image: Image, limits: Limits, what: str) -> Picture:
    """Any accepted kind of image as a Picture."""
    if isinstance(image, np.ndarray):
        return as_picture(image)
    if _is_pil(image):
        if image.mode.startswith("I") and image.mode != "I;16":  # 32-bit or byte-swapped integers: as 16-bit
            pixels = np.asarray(image)
            if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
                raise InputError(f"{what} is a PIL image of mode {image.mode} with values outside 0-65535; scale it to 16 bits first")
            return as_picture(pixels.astype(np.uint16))
        if image.mode in _PIL_CONVERTED:
            image = image.convert(_PIL_CONVERTED[image.mode])
        elif image.mode not in _PIL_KEPT:
            raise InputError(f"{what} is a PIL image of mode {image.mode}, which restore does not read; "
                             "convert it to RGB, RGBA, L or I;16 first")
        buffer = io.BytesIO()
        image.save(buffer, "TIFF" if image.mode == "CMYK" else "PNG")
        return read_image(buffer.getvalue(), limits)
    if isinstance(image, (bytes, bytearray, memoryview, str, os.PathLike)):
        return read_image(image if not isinstance(image, (bytearray, memoryview)) else bytes(image), limits)
    raise InputError(f"{what} must be a path, bytes, a PIL image or a numpy array, not {type(image).__name__}")


def _as_array(picture: Picture, like: np.ndarray) -> np.ndarray:
    """The result in the input array's layout: (H, W) stays (H, W) for gray results, alpha as a channel."""
    color = picture.color[..., 0] if like.ndim == 2 and picture.is_gray else picture.color
    return np.dstack([color, picture.alpha]) if picture.alpha is not None else color


def _as_pil(picture: Picture):
    from PIL import Image as PILImage

    color, alpha = picture.color, picture.alpha
    if picture.bits == 16 and not (picture.is_gray and alpha is None):  # Pillow holds 16-bit gray only
        color, alpha = ((color.astype(np.uint32) + 128) // 257).astype(np.uint8), None if alpha is None else ((alpha.astype(np.uint32) + 128) // 257).astype(np.uint8)
    pixels = color if alpha is None else np.dstack([color, alpha])
    return PILImage.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)


def run(image: Image, task: str | Sequence[str] = "denoise", *, output: str | os.PathLike | None = None,
        mask: Image | None = None, hints: Image | Sequence[tuple[int, int, str]] | None = None,
        format: str | None = None, metrics: bool = False, settings: Settings | None = None, **options) -> Any:
    """Run a task or a chain ("dewatermark,denoise") on one image and return the result as the same kind:
    a path (written to `output`, which a path input needs), bytes (encoded in `format`, else the input's),
    a PIL image, or a numpy array. A task that gives several results (colorize with samples > 1) returns a
    list. mask: dewatermark's guide; hints: colorize's, as an image or as (x, y, '#RRGGBB') points.
    options: the tasks' options (strength, ensemble, samples, seed). metrics=True returns (result, metrics)."""
    ctx = _context(settings)
    limits = Limits(ctx.settings.max_bytes, ctx.settings.max_pixels)
    guidance: dict[str, Image] = {}
    if mask is not None:
        guidance["mask"] = mask
    if hints is not None:
        if isinstance(hints, (list, tuple)) and all(isinstance(h, (list, tuple)) and len(h) == 3 for h in hints):
            options["hints"] = [*options.get("hints", []), *({"x": x, "y": y, "color": c} for x, y, c in hints)]
        else:
            guidance["hints"] = hints
    request = plan(task, {**options, **({"format": format} if format else {})}, tuple(guidance))
    several = request.results > 1

    if isinstance(image, (str, os.PathLike)):
        if output is None:
            raise InputError("a path in needs output=PATH to write the result to (or pass the image as bytes, PIL or numpy)")
        from restore.batch import sample_path

        make_folder(Path(output).parent)
        pictures = {k: _picture(g, limits, k) for k, g in guidance.items()}
        out = process(image, request, ctx, {k: encode_image(p, "PNG") for k, p in pictures.items()}, target=output)
        paths = [sample_path(Path(output), i) for i in range(len(out.blobs))]
        for path, blob in zip(paths, out.blobs):
            atomic_write(path, blob)
        result, measured = (paths if several else paths[0]), out.metrics
    elif isinstance(image, (bytes, bytearray, memoryview)):
        given = {k: g if isinstance(g, bytes) else encode_image(_picture(g, limits, k), "PNG") for k, g in guidance.items()}
        out = process(bytes(image), request, ctx, given)
        result, measured = (out.blobs if several else out.blobs[0]), out.metrics
    else:
        picture = _picture(image, limits, "the image")
        done = run_plan(request, picture, None, ctx, {k: _picture(g, limits, k) for k, g in guidance.items()})
        convert = (lambda p: _as_array(p, image)) if isinstance(image, np.ndarray) else _as_pil
        outputs = [convert(p) for p in done.pictures]
        result, measured = (outputs if several else outputs[0]), done.metrics
    return Restored(result, measured) if metrics else result


def denoise(image: Image, *, strength: float = 1.0, **kwargs) -> Any:
    """Remove noise (camera and phone noise, noisy JPEGs, grain, Gaussian noise). strength 0-1: up to 0.5
    the colour noise goes, above it the brightness grain too. See run for the kinds of image and kwargs."""
    return run(image, "denoise", strength=strength, **kwargs)


def dewatermark(image: Image, *, mask: Image | None = None, ensemble: bool = True, **kwargs) -> Any:
    """Find and remove visible watermarks; mask (optional) is white where the mark is. See run."""
    return run(image, "dewatermark", mask=mask, ensemble=ensemble, **kwargs)


def colorize(image: Image, *, samples: int = 1, seed: int = 0, hints: Image | Sequence[tuple[int, int, str]] | None = None,
             **kwargs) -> Any:
    """Colorize a gray photo; samples > 1 returns a list (the most likely first). hints: (x, y, '#RRGGBB')
    points or an image painted with the known colours (transparent elsewhere). See run."""
    return run(image, "colorize", samples=samples, seed=seed, hints=hints, **kwargs)
