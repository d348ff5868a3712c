"""Precision variants of an exported model, written beside it at export:

- int8, for CPUs: static quantization with ONNX Runtime's tools (QDQ format, per-channel int8 weights,
  uint8 activations calibrated on crops of real photos prepared as the task prepares them). The first
  and last convolutions stay in float: they touch the image itself, where an 8-bit step shows.
- fp16, for CUDA: weights and activations in float16, inputs and outputs in float32, so the serving
  code is the same for every variant.

Serving chooses among them (restore.engine); `restore bench speed` measures what each costs and gains.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from restore.training.data import list_images, load_rgb

VARIANTS = ("int8", "fp16")


def variant_path(path: Path, variant: str) -> Path:
    """models/denoise-unet.onnx -> models/denoise-unet.int8.onnx"""
    return path.with_name(f"{path.stem}.{variant}{path.suffix}")


def float32_graph(path: Path) -> onnx.ModelProto:
    """The model with its float16-stored weights (restore.training.export.store_weights_fp16) back as float32
    initializers, which is what the quantizer and the float16 converter expect."""
    model = onnx.load(str(path))
    graph = model.graph
    stored = {i.name: i for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT16}
    kept = []
    for node in graph.node:
        if node.op_type == "Cast" and node.input[0] in stored:
            graph.initializer.remove(stored[node.input[0]])
            graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(stored[node.input[0]]).astype(np.float32), node.output[0]))
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    return model


def calibration_inputs(task: str, model: onnx.ModelProto, folders: list[Path], count: int = 16, size: int = 256,
                       seed: int = 0, working_size: int = 128) -> list[dict[str, np.ndarray]]:
    """`count` inputs for the model as serving feeds it: noisy crops (denoise), marked crops with no hint
    (dewatermark), or the lightness of whole photos at the working size (colorize: see colorize_feed)."""
    rng = np.random.default_rng(seed)
    paths = list_images(folders)
    paths = [paths[i] for i in rng.choice(len(paths), size=min(count, len(paths)), replace=False)]
    names = [i.name for i in model.graph.input]
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    inputs = []
    for path in paths:
        image = load_rgb(path).astype(np.float32) / 255
        if task == "colorize":
            inputs.append(colorize_feed(image, shapes, len(inputs), rng, working_size))
            continue
        y, x = (int(rng.integers(max(1, n - size + 1))) for n in image.shape[:2])
        crop = image[y : y + size, x : x + size]
        crop = crop[: crop.shape[0] // 32 * 32, : crop.shape[1] // 32 * 32]
        if task == "denoise":
            from restore.training.degrade import degrade

            crop, _, _ = degrade(crop, rng)
            inputs.append({names[0]: crop.transpose(2, 0, 1)[None].astype(np.float32)})
        else:
            from restore.training.watermarks import WatermarkSynth, find_fonts

            marked, _ = WatermarkSynth(find_fonts()).apply(crop, rng)
            inputs.append({names[0]: marked.transpose(2, 0, 1)[None].astype(np.float32),
                           names[1]: np.zeros((1, 1, *crop.shape[:2]), np.float32)})
    return inputs


def colorize_feed(image: np.ndarray, shapes: dict[str, list[int]], index: int, rng: np.random.Generator, working_size: int) -> dict[str, np.ndarray]:
    """One colorize input as serving feeds it: L at the working size (4:3, one shape for every sample, as
    the calibrator stacks outputs); z = 0 (the first colouring) for even `index`, a draw from N(0, I) (the
    other samples) for odd; simulated hints on every third. Calibrated on z = 0 alone, the ranges clip
    what z changes, and the samples lose most of their differences."""
    import cv2

    from restore.color import rgb_to_lab
    from restore.tasks.colorize import working_shape
    from restore.training.train_colorize import simulate_hints

    h, w = working_shape(3, 4, working_size, 16)
    lab = rgb_to_lab(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA))
    feed = {"L": (lab[..., 0] / 100)[None, None].astype(np.float32)}
    if "z" in shapes:
        latent = shapes["z"][1]
        feed["z"] = (rng.standard_normal((1, latent, 1, 1)) if index % 2 else np.zeros((1, latent, 1, 1))).astype(np.float32)
    if "hint" in shapes:
        hint = simulate_hints(lab[..., 0], lab[..., 1:].transpose(2, 0, 1), rng) if index % 3 == 2 else np.zeros((3, h, w))
        feed["hint"] = hint[None].astype(np.float32)
    return feed


def edge_convolutions(model: onnx.ModelProto) -> list[str]:
    """The first and the last convolution: kept in float."""
    convs = [n.name for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    return [convs[0], convs[-1]] if convs else []


def write_int8(path: Path, out: Path, inputs: list[dict[str, np.ndarray]]) -> None:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(inputs)

        def get_next(self):
            return next(self.feeds, None)

    model = float32_graph(path)
    with tempfile.TemporaryDirectory() as tmp:
        plain, prepared = Path(tmp) / "fp32.onnx", Path(tmp) / "prepared.onnx"
        onnx.save(model, str(plain))
        quant_pre_process(str(plain), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile, extra_options={"CalibPercentile": 99.999},
                        op_types_to_quantize=["Conv", "ConvTranspose"], nodes_to_exclude=edge_convolutions(model))


def write_fp16(path: Path, out: Path) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(float32_graph(path), keep_io_types=True), str(out))


def write_variants(task: str, path: Path, calibration: list[Path], working_size: int = 128) -> dict[str, Path]:
    """Write the int8 and fp16 variants beside `path`; {variant: file}."""
    int8, fp16 = variant_path(path, "int8"), variant_path(path, "fp16")
    count = 32 if task == "colorize" else 16  # colorize's inputs are small; both kinds of z need enough of them
    write_int8(path, int8, calibration_inputs(task, onnx.load(str(path)), calibration, count=count, working_size=working_size))
    write_fp16(path, fp16)
    return {"int8": int8, "fp16": fp16}
