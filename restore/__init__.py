"""restore: image restoration with trained autoencoders, served through ONNX Runtime.

    from restore import denoise, dewatermark, colorize, run
    clean = denoise("photo.jpg", output="clean.jpg")     # a path: the result is written there
    array = denoise(numpy_image, strength=0.5)            # numpy, PIL or bytes in: the same kind out

See restore.library for the whole Python API.
"""
from pathlib import Path

__version__ = "0.2.0"

# A source checkout keeps the service's packages at the top level (api/, workers/); an installed wheel has
# them inside this package (pyproject.toml maps them). Searching the checkout's top level too makes
# `restore.api` and `restore.workers` import the same way in both.
_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "api" / "__init__.py").is_file() and (_checkout / "workers" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 (a package's own __path__)

_LIBRARY = ("denoise", "dewatermark", "colorize", "run", "Restored")


def __getattr__(name: str):
    # The Python API loads ONNX Runtime and numpy; `import restore` alone (the CLI's start) should not.
    if name in _LIBRARY:
        from restore import library

        return getattr(library, name)
    raise AttributeError(f"module 'restore' has no attribute {name!r}")


__all__ = [*_LIBRARY, "__version__"]
