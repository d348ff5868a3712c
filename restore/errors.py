"""Domain errors. The core raises these; only the edges (CLI, HTTP) turn them into exit codes or statuses."""


class RestoreError(Exception):
    """Base of every error restore raises on purpose."""


class InputError(RestoreError):
    """The input cannot be used: not an image, corrupt, truncated, empty, too large, or a bad option."""


class TooLarge(InputError):
    """The input is over a size limit (bytes or pixels)."""


class ModelError(RestoreError):
    """A model is missing, fails its checksum, or does not match the manifest."""


class DeviceError(RestoreError):
    """The requested execution device is not available (for example cuda without onnxruntime-gpu)."""
