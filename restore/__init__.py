"""restore: image restoration with trained autoencoders, served through ONNX Runtime."""

__version__ = "0.1.0"
