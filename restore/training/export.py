"""Export a trained checkpoint to ONNX (dynamic height and width), check ORT against torch, register it."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from restore.training import train_denoise, train_dewatermark
from restore.training.nets import WatermarkUNet

BUILDERS = {"denoise": train_denoise.build_model, "dewatermark": train_dewatermark.build_model}
OUTPUTS = {"denoise": ["restored"], "dewatermark": ["restored", "mask"]}


def load_model(task: str, checkpoint: str | Path) -> tuple[torch.nn.Module, dict]:
    """The EMA weights of a checkpoint (full or slim), in eval mode, and the checkpoint's state."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = BUILDERS[task](state["config"]["net"])
    model.load_state_dict({k: v.float() for k, v in state["ema"].items()})
    return model.eval(), state


class _Served(torch.nn.Module):
    """What serving runs: the watermark model without its training-only pixel head output."""

    def __init__(self, model: WatermarkUNet):
        super().__init__()
        self.model = model

    def forward(self, image, hint):
        restored, mask, _ = self.model(image, hint)
        return restored, mask


def export_onnx(model: torch.nn.Module, path: str | Path, stride: int, opset: int = 17) -> float:
    """Write the ONNX file and return the largest |ORT - torch| difference on a random non-square input."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    watermark = isinstance(model, WatermarkUNet)
    model = _Served(model).eval() if watermark else model
    inputs, outputs = (["image", "hint"], ["restored", "mask"]) if watermark else (["image"], ["restored"])

    def example(h: int, w: int) -> tuple[torch.Tensor, ...]:
        image = torch.rand(1, 3, h, w)
        return (image, (torch.rand(1, 1, h, w) > 0.8).float()) if watermark else (image,)

    dynamic = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        model, example(2 * stride, 3 * stride), str(path), dynamo=False, opset_version=opset,
        input_names=inputs, output_names=outputs, dynamic_axes={n: dynamic for n in inputs + outputs},
    )
    x = example(5 * stride, 7 * stride)
    with torch.no_grad():
        expected = model(*x)
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: t.numpy() for name, t in zip(inputs, x)})
    return max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected))


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest_entry(task: str, name: str, version: str, onnx_path: Path, state: dict, slim: Path | None) -> dict:
    cfg = state["config"]
    noise = {
        "denoise": lambda: f"Gaussian sigma U(0, {cfg['sigma_max']}) on the 0-255 scale; {cfg['p_quantized']:.0%} clipped "
                           f"and rounded to 8 bits; {cfg['p_gray']:.0%} gray",
        "dewatermark": lambda: "synthetic text and logo watermarks (restore.training.watermarks), opacity 0.3-0.9, "
                               f"{cfg['p_clean']:.0%} unmarked crops",
    }[task]()
    return {
        "name": name, "version": version, "task": task, "file": onnx_path.name, "sha256": sha256(onnx_path),
        "input": {"name": "image", "layout": "NCHW", "dtype": "float32", "channels": 3, "range": [0, 1],
                  "multiple_of": BUILDERS[task](cfg["net"]).config.stride, "bytes_per_pixel": 300,
                  **({"hint": "mask (N, 1, H, W) in [0, 1], zeros when none"} if task == "dewatermark" else {})},
        "output": {n: {"layout": "NCHW", "dtype": "float32", "channels": 3 if n == "restored" else 1, "range": [0, 1]}
                   for n in OUTPUTS[task]},
        "training": {
            "data": [Path(d).name for d in cfg["data"]], "steps": state["step"], "batch": cfg["batch"], "patch": cfg["patch"],
            "degradation": noise, "architecture": cfg["net"], "checkpoint": str(slim) if slim else None,
        },
        "metrics": {},
    }


def register(manifest: str | Path, entry: dict) -> None:
    """Add or replace (by name) the model's entry in models/manifest.json, keeping its recorded metrics."""
    manifest = Path(manifest)
    data = json.loads(manifest.read_text()) if manifest.exists() else {"models": []}
    old = next((m for m in data["models"] if m["name"] == entry["name"]), None)
    if old and not entry["metrics"]:
        entry["metrics"] = old.get("metrics", {})  # benchmark figures are re-measured, not dropped
    data["models"] = [m for m in data["models"] if m["name"] != entry["name"]] + [entry]
    manifest.write_text(json.dumps(data, indent=2) + "\n")


def slim_checkpoint(state: dict, path: str | Path) -> None:
    """The committed checkpoint: config, EMA weights in fp16, history; training resumes from it."""
    slim = {k: state[k] for k in ("config", "step", "history") if k in state}
    slim["ema"] = {k: v.half() if v.is_floating_point() else v for k, v in state["ema"].items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim, path)
