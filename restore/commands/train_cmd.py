"""`restore train TASK`, `restore export TASK` and `restore synth-watermarks`: the train extra (torch),
imported only when one of them runs."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from restore.commands.common import fail
from restore.errors import RestoreError

TASKS = ("denoise", "dewatermark", "colorize")


def _check(task: str) -> None:
    if task not in TASKS:
        typer.echo(f"error: training is available for {', '.join(TASKS)}, not {task!r}", err=True)
        raise typer.Exit(2)
    try:
        import torch  # noqa: F401
    except ImportError:
        typer.echo("error: training needs the train extra: pip install 'restore-photos[train]'", err=True)
        raise typer.Exit(1)


def train(
    task: Annotated[str, typer.Argument(help="denoise, dewatermark or colorize")],
    data: Annotated[list[Path], typer.Option("--data", help="folder of clean training images (repeatable)")],
    checkpoint: Annotated[Optional[Path], typer.Option(help="checkpoint to write and resume from (default runs/TASK/ckpt.pt)")] = None,
    init: Annotated[Optional[Path], typer.Option(help="start from this checkpoint's weights when --checkpoint does not exist yet")] = None,
    val: Annotated[Optional[Path], typer.Option(help="validation folder: clean images (denoise) or a synth-watermarks set")] = None,
    val_real: Annotated[Optional[Path], typer.Option(help="denoise: a folder of NAME_real / NAME_mean pairs (real camera noise) to check on")] = None,
    minutes: Annotated[float, typer.Option(help="length of this learning-rate cycle (a cut-short cycle is finished first)")] = 60.0,
    lr: Annotated[float, typer.Option(help="peak learning rate")] = 5e-4,
    batch: Annotated[Optional[int], typer.Option(help="crops per step (default 16 denoise, 5 dewatermark, 32 colorize)")] = None,
    patch: Annotated[Optional[int], typer.Option(help="crop side in pixels, a multiple of 16 (default 96 denoise, 192 dewatermark, 64 colorize)")] = None,
    fonts: Annotated[Optional[list[Path]], typer.Option("--fonts", help="dewatermark: font folders (default: the DejaVu family)")] = None,
    latent: Annotated[Optional[int], typer.Option(help="colorize: latent channels (default 8); 0 trains the deterministic autoencoder baseline")] = None,
    working_size: Annotated[Optional[int], typer.Option(help="colorize: long side photos are shrunk to, in training and serving (default 128)")] = None,
    threads: Annotated[int, typer.Option(help="torch threads; 0 = all cores")] = 0,
    bf16: Annotated[bool, typer.Option("--bf16", help="bfloat16 autocast for the training steps: faster on CPUs with AVX512-BF16 or AMX")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    grow_blocks: Annotated[Optional[str], typer.Option(help="residual blocks per level, e.g. 2,1,1,2: grow --init's architecture to them (new blocks start as the identity)")] = None,
) -> None:
    """Train (or resume training) a model; checkpoints every few minutes."""
    _check(task)
    if val_real and task != "denoise":
        typer.echo("error: --val-real is for denoise", err=True)
        raise typer.Exit(2)
    logging.getLogger().setLevel(logging.INFO)
    common = dict(data=[str(d) for d in data], val=str(val) if val else None, init=str(init) if init else None,
                  checkpoint=str(checkpoint or Path("runs") / task / "ckpt.pt"), minutes=minutes, lr=lr, threads=threads, bf16=bf16, seed=seed)
    common |= {k: v for k, v in {"batch": batch, "patch": patch}.items() if v is not None}
    if grow_blocks:
        try:
            common["grow_blocks"] = tuple(int(n) for n in grow_blocks.split(","))
        except ValueError:
            typer.echo(f"error: --grow-blocks takes counts separated by commas, such as 2,1,1,2, not {grow_blocks!r}", err=True)
            raise typer.Exit(2)
        if not init:
            typer.echo("error: --grow-blocks grows the --init checkpoint; give one", err=True)
            raise typer.Exit(2)
    try:
        _train(task, common | ({"val_real": str(val_real)} if val_real else {}), latent, working_size, fonts)
    except RestoreError as e:
        fail(e)


def _train(task: str, common: dict, latent: int | None, working_size: int | None, fonts: list[Path] | None) -> None:
    if task == "denoise":
        from restore.training.train_denoise import DenoiseTrainConfig, train as run

        run(DenoiseTrainConfig(**common))
    elif task == "colorize":
        from dataclasses import asdict

        from restore.training.nets import ColorConfig
        from restore.training.train_colorize import ColorizeTrainConfig, train as run

        hints = latent != 0  # the deterministic baseline stays what it was built to show: colour from L alone
        net = asdict(ColorConfig(hints=hints) if latent is None else ColorConfig(latent=latent, hints=hints))
        run(ColorizeTrainConfig(**common, net=net, hints=hints, **({"working_size": working_size} if working_size else {})))
    else:
        from restore.training.train_dewatermark import DewatermarkTrainConfig, train as run

        run(DewatermarkTrainConfig(**common, fonts=[str(f) for f in fonts or []]))


def export(
    task: Annotated[str, typer.Argument(help="denoise, dewatermark or colorize")],
    checkpoint: Annotated[Optional[Path], typer.Option(help="training checkpoint (default runs/TASK/ckpt.pt)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="ONNX file to write (default models/NAME.onnx)")] = None,
    manifest: Annotated[Optional[Path], typer.Option(help="manifest to register the model in")] = Path("models/manifest.json"),
    version: Annotated[str, typer.Option(help="model version for the manifest")] = "1",
    slim: Annotated[Optional[Path], typer.Option(help="also write a slim fp16 resumable checkpoint here")] = None,
    calibrate: Annotated[Optional[list[Path]], typer.Option("--calibrate", metavar="DIR", help="photos to calibrate the int8 variant on: also write the int8 and fp16 variants (repeatable)", show_default=False)] = None,
    average: Annotated[Optional[Path], typer.Option(metavar="CHECKPOINT", help="average the EMA weights with this checkpoint's (the same network, half each), e.g. the released model and its continued training", show_default=False)] = None,
) -> None:
    """Export the EMA weights to ONNX, check ONNX Runtime against torch, and register the model."""
    _check(task)
    from restore.training.export import export_onnx, load_model, manifest_entry, model_name, register, slim_checkpoint

    checkpoint = checkpoint or Path("runs") / task / "ckpt.pt"
    try:
        model, state = load_model(task, checkpoint, average)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1)
    name = model_name(task, model)
    out = out or Path("models") / f"{name}.onnx"
    diff = export_onnx(model, out)
    typer.echo(f"wrote {out}; max |onnxruntime - torch| = {diff:.2e}")
    if diff > 1e-3:
        typer.echo("error: ONNX Runtime and torch disagree", err=True)
        raise typer.Exit(1)
    if slim:
        slim_checkpoint(state, slim)
        typer.echo(f"wrote {slim}")
    entry = manifest_entry(task, name, version, out, state, slim)
    if calibrate:
        entry["variants"] = _variants(task, out, calibrate, state["config"].get("working_size", 128))
    if manifest:
        register(manifest, entry)
        typer.echo(f"registered in {manifest}")


def _variants(task: str, onnx_file: Path, calibrate: list[Path], working_size: int) -> dict:
    from restore.training.export import sha256
    from restore.training.quantize import write_variants

    files = write_variants(task, onnx_file, calibrate, working_size)
    for variant, path in files.items():
        typer.echo(f"wrote {path} ({variant})")
    return {variant: {"file": path.name, "sha256": sha256(path)} for variant, path in files.items()}


def quantize(
    task: Annotated[str, typer.Argument(help="denoise, dewatermark or colorize")],
    calibrate: Annotated[list[Path], typer.Option("--calibrate", metavar="DIR", help="photos to calibrate the int8 variant on (repeatable)")],
    manifest: Annotated[Path, typer.Option(metavar="PATH", help="the manifest whose model gets the variants")] = Path("models/manifest.json"),
) -> None:
    """Write the int8 and fp16 variants of a registered model and list them in its manifest entry."""
    _check(task)
    import json

    data = json.loads(manifest.read_text())
    entry = next((m for m in data["models"] if m["task"] == task), None)
    if entry is None:
        fail(RestoreError(f"no model for task {task!r} in {manifest}"))
    working_size = int(entry["input"].get("working_size", 128))
    before = entry.get("variants", {})
    entry["variants"] = _variants(task, manifest.parent / entry["file"], calibrate, working_size)
    for variant, listed in entry["variants"].items():  # an unchanged file keeps what was measured of it
        if before.get(variant, {}).get("sha256") == listed["sha256"]:
            entry["variants"][variant] = {**before[variant], **listed}
    manifest.write_text(json.dumps(data, indent=2) + "\n")
    typer.echo(f"registered in {manifest}")


def synth_watermarks(
    source: Annotated[Path, typer.Argument(help="folder of clean images")],
    out: Annotated[Path, typer.Argument(help="folder for clean/, marked/ and mask/")],
    seed: Annotated[int, typer.Option(help="the set is reproducible from this seed")] = 0,
    fonts: Annotated[Optional[list[Path]], typer.Option("--fonts", help="font folders (default: the DejaVu family, as in training)")] = None,
) -> None:
    """Write a fixed, seeded watermark set (for validation and `restore bench dewatermark`)."""
    _check("dewatermark")
    from restore.training.train_dewatermark import write_validation_set
    from restore.training.watermarks import WatermarkSynth, find_fonts

    count = write_validation_set(source, out, WatermarkSynth(find_fonts(fonts or None)), seed)
    typer.echo(f"wrote {count} watermarked images with their masks under {out}")
