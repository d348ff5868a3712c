"""Shared fixtures. Unit tests use tiny ONNX models built here; others use the shipped models."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from restore.settings import Settings
from restore.tasks.base import Context

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def conv_model(path: Path, kernel: np.ndarray) -> None:
    """A one-layer (1|N, 3, H, W) -> (N, 3, H, W) convolution with dynamic size, 'same' padding."""
    k = kernel.shape[-1]
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])
    y = helper.make_tensor_value_info("restored", TensorProto.FLOAT, ["n", 3, "h", "w"])
    node = helper.make_node("Conv", ["image", "W"], ["restored"], pads=[k // 2] * 4)
    graph = helper.make_graph([node], "tiny", [x], [y], [numpy_helper.from_array(kernel.astype(np.float32), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def watermark_model(path: Path) -> None:
    """Inputs and outputs like the real dewatermark model: the image comes back unchanged, and the 'mask'
    is the larger of its channel mean and the hint."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])
    hint = helper.make_tensor_value_info("hint", TensorProto.FLOAT, ["n", 1, "h", "w"])
    y = helper.make_tensor_value_info("restored", TensorProto.FLOAT, ["n", 3, "h", "w"])
    m = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["n", 1, "h", "w"])
    nodes = [
        helper.make_node("Identity", ["image"], ["restored"]),
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Max", ["mean", "hint"], ["mask"]),
    ]
    model = helper.make_model(helper.make_graph(nodes, "tiny-wm", [x, hint], [y, m]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


TINY_LATENT = 2


def colorize_model(path: Path, latent: int = TINY_LATENT) -> None:
    """Inputs and outputs like the real colorize model: L (N, 1, H, W), one z (N, latent, 1, 1) per photo
    and the hints (N, 3, H, W) in, logits over the ab bins at a quarter size out: fixed 1x1 convolutions
    of the 4x4-averaged L, of z and of the 4x4-averaged hints, added, so the colouring depends on all
    three (and so on the seed and the hints)."""
    from restore.color import ab_bins

    q = len(ab_bins())
    rng = np.random.default_rng(7)
    w_l, w_z, w_h = (rng.normal(0, 3, (q, c, 1, 1)).astype(np.float32) for c in (1, latent, 3))
    x = helper.make_tensor_value_info("L", TensorProto.FLOAT, ["n", 1, "h", "w"])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", latent, 1, 1])
    hint = helper.make_tensor_value_info("hint", TensorProto.FLOAT, ["n", 3, "h", "w"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", q, "hq", "wq"])
    nodes = [
        helper.make_node("AveragePool", ["L"], ["Lq"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Conv", ["Lq", "WL"], ["from_l"]),
        helper.make_node("Conv", ["z", "WZ"], ["from_z"]),
        helper.make_node("AveragePool", ["hint"], ["Hq"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Conv", ["Hq", "WH"], ["from_h"]),
        helper.make_node("Add", ["from_l", "from_z"], ["lz"]),
        helper.make_node("Add", ["lz", "from_h"], ["logits"]),
    ]
    weights = [numpy_helper.from_array(w, n) for w, n in ((w_l, "WL"), (w_z, "WZ"), (w_h, "WH"))]
    graph = helper.make_graph(nodes, "tiny-colorize", [x, z, hint], [y], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def identity_kernel() -> np.ndarray:
    k = np.zeros((3, 3, 3, 3), np.float32)
    for c in range(3):
        k[c, c, 1, 1] = 1
    return k


def blur_kernel() -> np.ndarray:
    k = np.zeros((3, 3, 3, 3), np.float32)
    for c in range(3):
        k[c, c] = 1 / 9
    return k


def write_models_dir(folder: Path, kernel: np.ndarray, multiple_of: int = 8) -> Path:
    """A models folder with a tiny denoise model (a convolution), a tiny dewatermark model and a tiny
    colorize model."""
    from restore.color import ab_bins

    folder.mkdir(parents=True, exist_ok=True)
    conv_model(folder / "tiny-denoise.onnx", kernel)
    watermark_model(folder / "tiny-dewatermark.onnx")
    colorize_model(folder / "tiny-colorize.onnx")
    entries = [
        {
            "name": f"tiny-{task}", "version": "0", "task": task, "file": f"tiny-{task}.onnx",
            "sha256": hashlib.sha256((folder / f"tiny-{task}.onnx").read_bytes()).hexdigest(),
            "input": {"name": "image", "multiple_of": multiple_of, "bytes_per_pixel": 64},
            "output": {"name": "restored"},
        }
        for task in ("denoise", "dewatermark")
    ]
    entries.append({
        "name": "tiny-colorize", "version": "0", "task": "colorize", "file": "tiny-colorize.onnx",
        "sha256": hashlib.sha256((folder / "tiny-colorize.onnx").read_bytes()).hexdigest(),
        "input": {"name": "L", "multiple_of": 16, "working_size": 64, "latent": TINY_LATENT, "hint": "(N, 3, H, W)"},
        "output": {"logits": {"bins": ab_bins().tolist(), "temperature": 0.38}},
    })
    (folder / "manifest.json").write_text(json.dumps({"models": entries}))
    return folder


@pytest.fixture(scope="session")
def identity_models(tmp_path_factory) -> Path:
    return write_models_dir(tmp_path_factory.mktemp("identity-models"), identity_kernel())


@pytest.fixture(scope="session")
def blur_models(tmp_path_factory) -> Path:
    return write_models_dir(tmp_path_factory.mktemp("blur-models"), blur_kernel())


@pytest.fixture
def identity_ctx(identity_models) -> Context:
    return Context.create(Settings(models_dir=identity_models, device="cpu", threads=1))


@pytest.fixture(scope="session")
def shipped_ctx() -> Context:
    """The real, shipped models (no RESTORE_* environment read: tests stay reproducible)."""
    return Context.create(Settings(_env_file=None, models_dir=None, device="cpu"))


def smooth_image(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth colour image in [0, 1]: gradients and a few soft blobs, easy to tell apart from noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 13 + yy / 17)], axis=2)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(8, 30)
        img += 0.2 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
    return np.clip(img, 0, 1).astype(np.float32)
