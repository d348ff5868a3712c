"""Export a trained checkpoint to ONNX (dynamic height and width), check ORT against torch, register it."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from restore.training.nets import DenoiseUNet
from restore.training.train_denoise import build_model


def load_denoiser(checkpoint: str | Path) -> tuple[DenoiseUNet, dict]:
    """The EMA weights of a checkpoint (full or slim), in eval mode, and the checkpoint's state."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = build_model(state["config"]["net"])
    model.load_state_dict({k: v.float() for k, v in state["ema"].items()})
    return model.eval(), state


def export_onnx(model: torch.nn.Module, path: str | Path, stride: int, opset: int = 17) -> float:
    """Write the ONNX file and return the largest |ORT - torch| difference on a random non-square input."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, 3, 2 * stride, 3 * stride)
    torch.onnx.export(
        model, (example,), str(path), dynamo=False, opset_version=opset,
        input_names=["image"], output_names=["restored"],
        dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "restored": {0: "batch", 2: "height", 3: "width"}},
    )
    x = torch.rand(1, 3, 5 * stride, 7 * stride)
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    return float(np.abs(got - expected).max())


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def register(manifest: str | Path, entry: dict) -> None:
    """Add or replace (by name) the model's entry in models/manifest.json."""
    manifest = Path(manifest)
    data = json.loads(manifest.read_text()) if manifest.exists() else {"models": []}
    data["models"] = [m for m in data["models"] if m["name"] != entry["name"]] + [entry]
    manifest.write_text(json.dumps(data, indent=2) + "\n")


def slim_checkpoint(state: dict, path: str | Path) -> None:
    """The committed checkpoint: config, EMA weights in fp16, history; training resumes from it."""
    slim = {k: state[k] for k in ("config", "step", "history") if k in state}
    slim["ema"] = {k: v.half() if v.is_floating_point() else v for k, v in state["ema"].items()}
    torch.save(slim, path)
