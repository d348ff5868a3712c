"""`restore train denoise` and `restore export denoise`: the train extra (torch), imported only when run."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

TASKS = ("denoise",)


def _check(task: str) -> None:
    if task not in TASKS:
        typer.echo(f"error: training is available for {', '.join(TASKS)}, not {task!r}", err=True)
        raise typer.Exit(2)


def _torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        typer.echo("error: training needs the train extra: pip install 'restore[train]'", err=True)
        raise typer.Exit(1)


def train(
    task: Annotated[str, typer.Argument(help="denoise")],
    data: Annotated[list[Path], typer.Option("--data", help="folder of clean training images (repeatable)")],
    checkpoint: Annotated[Path, typer.Option(help="checkpoint to write and resume from")] = Path("runs/denoise/ckpt.pt"),
    init: Annotated[Optional[Path], typer.Option(help="start from this checkpoint's weights when --checkpoint does not exist yet")] = None,
    val: Annotated[Optional[Path], typer.Option(help="folder of clean images for a PSNR check during training")] = None,
    minutes: Annotated[float, typer.Option(help="length of this learning-rate cycle (a cut-short cycle is finished first)")] = 60.0,
    lr: Annotated[float, typer.Option(help="peak learning rate")] = 5e-4,
    batch: Annotated[int, typer.Option(help="crops per step")] = 16,
    patch: Annotated[int, typer.Option(help="crop side in pixels, a multiple of 16")] = 96,
    threads: Annotated[int, typer.Option(help="torch threads; 0 = all cores")] = 0,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train (or resume training) a model; checkpoints every few minutes."""
    _check(task)
    _torch()
    from restore.training.train_denoise import DenoiseTrainConfig
    from restore.training.train_denoise import train as run_training

    logging.getLogger().setLevel(logging.INFO)
    cfg = DenoiseTrainConfig(
        data=[str(d) for d in data], val=str(val) if val else None, checkpoint=str(checkpoint), init=str(init) if init else None,
        minutes=minutes, lr=lr, batch=batch, patch=patch, threads=threads, seed=seed,
    )
    run_training(cfg)


def export(
    task: Annotated[str, typer.Argument(help="denoise")],
    checkpoint: Annotated[Path, typer.Option(help="training checkpoint")] = Path("runs/denoise/ckpt.pt"),
    out: Annotated[Path, typer.Option(help="ONNX file to write")] = Path("models/denoise-unet.onnx"),
    manifest: Annotated[Optional[Path], typer.Option(help="manifest to register the model in")] = Path("models/manifest.json"),
    version: Annotated[str, typer.Option(help="model version for the manifest")] = "1",
    slim: Annotated[Optional[Path], typer.Option(help="also write a slim fp16 resumable checkpoint here")] = None,
) -> None:
    """Export the EMA weights to ONNX, check ONNX Runtime against torch, and register the model."""
    _check(task)
    _torch()
    from restore.training.export import export_onnx, load_denoiser, register, sha256, slim_checkpoint

    model, state = load_denoiser(checkpoint)
    stride = model.config.stride
    diff = export_onnx(model, out, stride)
    typer.echo(f"wrote {out}; max |onnxruntime - torch| = {diff:.2e}")
    if diff > 1e-3:
        typer.echo("error: ONNX Runtime and torch disagree", err=True)
        raise typer.Exit(1)
    if slim:
        slim_checkpoint(state, slim)
        typer.echo(f"wrote {slim}")
    if manifest:
        cfg = state["config"]
        register(manifest, {
            "name": "denoise-unet",
            "version": version,
            "task": "denoise",
            "file": out.name,
            "sha256": sha256(out),
            "input": {"name": "image", "layout": "NCHW", "dtype": "float32", "channels": 3, "range": [0, 1],
                      "multiple_of": stride, "bytes_per_pixel": 300},
            "output": {"name": "restored", "layout": "NCHW", "dtype": "float32", "channels": 3, "range": [0, 1]},
            "training": {
                "data": [Path(d).name for d in cfg["data"]], "steps": state["step"], "batch": cfg["batch"], "patch": cfg["patch"],
                "noise": f"Gaussian sigma U(0, {cfg['sigma_max']}) on the 0-255 scale; {cfg['p_quantized']:.0%} clipped and rounded to 8 bits; {cfg['p_gray']:.0%} gray",
                "architecture": state["config"]["net"],
                "checkpoint": str(slim) if slim else None,
            },
            "metrics": {},
        })
        typer.echo(f"registered in {manifest}")
