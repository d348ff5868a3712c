"""Export a trained checkpoint to ONNX (dynamic height and width), check ORT against torch, register it."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from restore.training import train_denoise, train_dewatermark

BUILDERS = {"denoise": train_denoise.build_model, "dewatermark": train_dewatermark.build_model}
OUTPUTS = {"denoise": ["restored"], "dewatermark": ["restored", "mask"]}


def load_model(task: str, checkpoint: str | Path) -> tuple[torch.nn.Module, dict]:
    """The EMA weights of a checkpoint (full or slim), in eval mode, and the checkpoint's state."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = BUILDERS[task](state["config"]["net"])
    model.load_state_dict({k: v.float() for k, v in state["ema"].items()})
    return model.eval(), state


def export_onnx(model: torch.nn.Module, path: str | Path, stride: int, opset: int = 17) -> float:
    """Write the ONNX file and return the largest |ORT - torch| difference on a random non-square input."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        outputs = model(torch.rand(1, 3, stride, stride))
    names = ["restored"] if isinstance(outputs, torch.Tensor) else ["restored", "mask"]
    dynamic = {"batch": 0, "height": 2, "width": 3}
    torch.onnx.export(
        model, (torch.rand(1, 3, 2 * stride, 3 * stride),), str(path), dynamo=False, opset_version=opset,
        input_names=["image"], output_names=names,
        dynamic_axes={n: {v: k for k, v in dynamic.items()} for n in ["image", *names]},
    )
    x = torch.rand(1, 3, 5 * stride, 7 * stride)
    with torch.no_grad():
        expected = model(x)
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})
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
                  "multiple_of": BUILDERS[task](cfg["net"]).config.stride, "bytes_per_pixel": 300},
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
