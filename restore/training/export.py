"""Export a trained checkpoint to ONNX (dynamic height and width), check ORT against torch, register it."""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from restore.color import ab_bins
from restore.training import train_colorize, train_denoise, train_dewatermark
from restore.training.degrade import KINDS
from restore.training.nets import ColorVAE, WatermarkUNet

BUILDERS = {"denoise": train_denoise.build_model, "dewatermark": train_dewatermark.build_model, "colorize": train_colorize.build_model}


def model_name(task: str, model: torch.nn.Module) -> str:
    """The manifest name: colorize's latent-free baseline is a model of its own, never served by the task."""
    if isinstance(model, ColorVAE):
        return "colorize-vae" if model.config.latent else "colorize-ae"
    return f"{task}-unet"


def load_model(task: str, checkpoint: str | Path, average: str | Path | None = None) -> tuple[torch.nn.Module, dict]:
    """The EMA weights of a checkpoint (full or slim), in eval mode, and the checkpoint's state. A
    colorize model comes with the served rebalancing folded in (shift_rebalancing). average: another
    checkpoint of the same network whose EMA weights are averaged in, half each (the state then holds
    the average, so a slim checkpoint written from it resumes from the averaged model)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if average is not None:
        other = torch.load(average, map_location="cpu", weights_only=False)
        if other["config"]["net"] != state["config"]["net"] or other["ema"].keys() != state["ema"].keys():
            raise ValueError(f"{average} is not a checkpoint of the same network as {checkpoint}")
        # Two fine-tunings of one model sit in one basin: their mean keeps most of what each learnt.
        state["ema"] = {k: (v.float() + other["ema"][k].float()) / 2 if v.is_floating_point() else v for k, v in state["ema"].items()}
        state["averaged_with"] = {"checkpoint": Path(average).name, "step": other.get("step")}
    model = BUILDERS[task](state["config"]["net"])
    model.load_state_dict({k: v.float() for k, v in state["ema"].items()})
    if isinstance(model, ColorVAE):
        shift_rebalancing(model, state)
    return model.eval(), state


def shift_rebalancing(model: ColorVAE, state: dict) -> None:
    """Fold the served rebalancing into the last layer's bias (a constant per bin added to the logits)."""
    if "colour_prior" not in state:
        raise ValueError("the checkpoint has no colour prior (training saves it): resume its training once")
    shift = train_colorize.prior_shift(state["colour_prior"], state["config"]["rebalance"], train_colorize.SERVED_REBALANCE)
    with torch.no_grad():
        model.logits[-1].bias += shift


class _Watermark(torch.nn.Module):
    """What serving runs: the watermark model without its training-only pixel head output."""

    def __init__(self, model: WatermarkUNet):
        super().__init__()
        self.model = model

    def forward(self, image, hint):
        restored, mask, _ = self.model(image, hint)
        return restored, mask


class _Deterministic(torch.nn.Module):
    """The colorize baseline: no latent, so its one input is L."""

    def __init__(self, model: ColorVAE):
        super().__init__()
        self.model = model

    def forward(self, L):
        return self.model.decode(L)


def served(model: torch.nn.Module):
    """(module to export, input names, output names, example(h, w) -> input tensors)."""
    if isinstance(model, WatermarkUNet):
        return _Watermark(model).eval(), ["image", "hint"], ["restored", "mask"], lambda h, w: (
            torch.rand(1, 3, h, w), (torch.rand(1, 1, h, w) > 0.8).float())
    if isinstance(model, ColorVAE):
        if model.config.latent and model.config.hints:
            return model, ["L", "z", "hint"], ["logits"], lambda h, w: (
                torch.rand(2, 1, h, w), torch.randn(2, model.config.latent, 1, 1), _example_hints(2, h, w))
        if model.config.latent:
            return model, ["L", "z"], ["logits"], lambda h, w: (torch.rand(2, 1, h, w), torch.randn(2, model.config.latent, 1, 1))
        return _Deterministic(model).eval(), ["L"], ["logits"], lambda h, w: (torch.rand(1, 1, h, w),)
    return model, ["image"], ["restored"], lambda h, w: (torch.rand(1, 3, h, w),)


def _example_hints(n: int, h: int, w: int) -> torch.Tensor:
    """Hints as serving gives them: a few hinted pixels, zeros elsewhere."""
    mask = (torch.rand(n, 1, h, w) > 0.9).float()
    return torch.cat([(torch.rand(n, 2, h, w) * 2 - 1) * mask, mask], dim=1)


def store_weights_fp16(path: Path, min_size: int = 64) -> None:
    """Halve the file: float32 weights (of at least min_size values) are stored as float16, each behind
    a Cast back to float32 that ONNX Runtime folds when the session starts, so inference runs in float32
    as before. Small tensors (biases of a few values, resize scales) stay as they are."""
    proto = onnx.load(str(path))
    graph, casts = proto.graph, []
    for i, init in enumerate(graph.initializer):
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_size:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_fp16")
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
        graph.initializer[i].CopyFrom(half)
    nodes = casts + list(graph.node)  # a Cast comes before every use: the graph stays sorted
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def export_onnx(model: torch.nn.Module, path: str | Path, opset: int = 17) -> float:
    """Write the ONNX file (weights stored in float16) and return the largest |ORT - torch| difference
    on a random non-square input, torch running the same float16-rounded weights in float32."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model)
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                t.copy_(t.half().float())
    module, inputs, outputs, example = served(model)
    stride = model.config.stride
    dynamic = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        module, example(2 * stride, 3 * stride), str(path), dynamo=False, opset_version=opset,
        input_names=inputs, output_names=outputs, dynamic_axes={n: dynamic for n in inputs + outputs},
    )
    store_weights_fp16(path)
    x = example(5 * stride, 7 * stride)
    with torch.no_grad():
        expected = module(*x)
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: t.numpy() for name, t in zip(inputs, x)})
    expected = [e.numpy() for e in expected]
    agree = off_the_cut(module, expected, got)
    return max(float(np.abs(np.where(agree, g - e, 0)).max()) for g, e in zip(got, expected))


def off_the_cut(module: torch.nn.Module, expected: list[np.ndarray], got: list[np.ndarray]) -> np.ndarray | bool:
    """Where the two runtimes' outputs are compared: everywhere, except, for the watermark model, pixels
    whose mask sits on its hard cut (keep_below): a rounding difference of 1e-7 may put one runtime's
    value either side of it, and the mask then differs by the whole cut (1/512) with both runtimes right."""
    if not isinstance(module, _Watermark):
        return True
    cut = module.model.keep_below
    tie = (np.abs(expected[1] - cut) < 1e-4 * cut + 1e-6) | (np.abs(got[1] - cut) < 1e-4 * cut + 1e-6)
    return ~tie


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest_entry(task: str, name: str, version: str, onnx_path: Path, state: dict, slim: Path | None) -> dict:
    cfg = state["config"]
    model = BUILDERS[task](cfg["net"])
    entry = {
        "name": name, "version": version, "task": task, "file": onnx_path.name, "sha256": sha256(onnx_path),
        "training": {
            "data": [Path(d).name for d in cfg["data"]], "steps": state["step"], "batch": cfg["batch"], "patch": cfg["patch"],
            "architecture": cfg["net"], "checkpoint": str(slim) if slim else None,
            **({"averaged_with": state["averaged_with"]} if "averaged_with" in state else {}),
        },
        "metrics": {},
    }
    image_in = {"name": "image", "layout": "NCHW", "dtype": "float32", "channels": 3, "range": [0, 1],
                "multiple_of": model.config.stride, "bytes_per_pixel": 300}
    image_out = {"layout": "NCHW", "dtype": "float32", "channels": 3, "range": [0, 1]}
    if task == "denoise":
        entry["input"], entry["output"] = image_in, {"restored": image_out}
        mix = cfg["mix"]
        shares = ", ".join(f"{k} {mix[k]:.0%}" for k in KINDS)
        entry["training"]["degradation"] = (f"restore.training.degrade mix: {shares}; Gaussian sigma U(0, {mix['sigma_max']}) on the "
                                            f"0-255 scale, half float and unclipped; {mix['p_gray']:.0%} gray")
    elif task == "dewatermark":
        entry["input"] = {**image_in, "hint": "mask (N, 1, H, W) in [0, 1], zeros when none"}
        entry["output"] = {"restored": image_out, "mask": {**image_out, "channels": 1}}
        entry["training"]["degradation"] = ("synthetic text and logo watermarks (restore.training.watermarks), opacity 0.3-0.9, "
                                            f"{cfg.get('fill_share', 0.0):.0%} of the procedural logos filled, "
                                            f"{cfg.get('turn_share', 0.0):.0%} of the marks turned a quarter, "
                                            f"{cfg['p_clean']:.0%} unmarked crops")
    else:  # colorize: the VAE, or its deterministic baseline (a model of its own, not served by the task)
        latent = model.config.latent
        entry["task"] = task if latent else "colorize-baseline"
        entry["input"] = {"name": "L", "layout": "NCHW", "dtype": "float32", "channels": 1, "range": [0, 1],
                          "meaning": "CIE L / 100 at the working size", "multiple_of": model.config.stride,
                          "working_size": cfg["working_size"], "latent": latent,
                          **({"z": f"(N, {latent}, 1, 1), N(0, I); zeros for the most likely colouring"} if latent else {}),
                          **({"hint": "(N, 3, H, W): hinted a / 110, b / 110 and a mask of hinted pixels; zeros for none"}
                             if model.config.hints else {})}
        # The overall colour from the distribution without rebalancing: its logits are these plus a shift per bin.
        plain = train_colorize.prior_shift(state["colour_prior"], train_colorize.SERVED_REBALANCE, 1.0)
        entry["output"] = {"logits": {"layout": "NCHW", "dtype": "float32", "size": "H / 4, W / 4",
                                      "bins": ab_bins().tolist(), "temperature": train_colorize.TEMPERATURE,
                                      "rebalance": train_colorize.SERVED_REBALANCE,
                                      "mean": {"shift": [round(float(v), 5) for v in plain],
                                               "temperature": train_colorize.MEAN_TEMPERATURE}}}
        entry["training"]["degradation"] = f"photos shrunk to {cfg['working_size']} px on the long side; L in, ab out" + (
            f"; KL weight {cfg['kl_weight']} after a {cfg['kl_warmup']}-step warm-up; {cfg['p_zero']:.0%} of crops decoded at z = 0"
            if latent else "") + (f"; class rebalancing {cfg['rebalance']} in training, served as "
                                  f"{train_colorize.SERVED_REBALANCE} (a logit shift at export)") + (
            "; simulated colour hints (restore.training.train_colorize.simulate_hints): "
            + ", ".join(f"{k} {v}" for k, v in cfg["hint_draw"].items() if v is not None) if model.config.hints else "")
    return entry


def register(manifest: str | Path, entry: dict) -> None:
    """Add or replace (by name) the model's entry in models/manifest.json, keeping its recorded metrics."""
    manifest = Path(manifest)
    data = json.loads(manifest.read_text()) if manifest.exists() else {"models": []}
    old = next((m for m in data["models"] if m["name"] == entry["name"]), None)
    if old and not entry["metrics"]:
        entry["metrics"] = old.get("metrics", {})  # benchmark figures are re-measured, not dropped
    if old:  # in its place, so the manifest's diff shows only what changed
        data["models"][data["models"].index(old)] = entry
    else:
        data["models"].append(entry)
    manifest.write_text(json.dumps(data, indent=2) + "\n")


def slim_checkpoint(state: dict, path: str | Path) -> None:
    """The committed checkpoint: config, EMA weights in fp16, history; training resumes from it."""
    slim = {k: state[k] for k in ("config", "step", "history", "colour_prior", "averaged_with") if k in state}
    slim["ema"] = {k: v.half() if v.is_floating_point() else v for k, v in state["ema"].items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim, path)
