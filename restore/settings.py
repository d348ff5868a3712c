"""Typed settings for the core library, read from RESTORE_* environment variables by the edges only.

The core never reads the environment itself: CLI, workers and tests build a Settings and pass it down.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "int8", "fp16"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RESTORE_", extra="ignore")

    models_dir: Path | None = Field(None, description="a folder with manifest.json and the models; None: the ones shipped")
    device: Device = Field("auto", description="auto (CUDA when onnxruntime-gpu finds a GPU), cpu or cuda")
    precision: Precision = Field("auto", description="auto (fp16 on CUDA; on CPU int8 where the model's int8 variant keeps its "
                                 "quality, else fp32), fp32, int8 or fp16")
    threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads; 0 = all cores")
    tile_size: int = Field(768, ge=64, le=4096, description="largest tile side in pixels (a short, wide image gets tiles as much wider: the area is what is kept)")
    tile_overlap: int = Field(32, ge=0, le=256, description="pixels neighbouring tiles share, blended")
    memory_budget_mb: int = Field(1024, ge=64, description="bounds the tile size: model activations per tile")
    max_pixels: int = Field(120_000_000, ge=1, description="largest image, width x height, read from the header before decoding")
    max_bytes: int = Field(256 * 2**20, ge=1, description="largest image file in bytes")


def describe(error: ValidationError) -> str:
    """A settings error in the user's terms: each field with the variable that sets it and the value given."""
    return "; ".join(f"{'_'.join(map(str, e['loc']))} (RESTORE_{'_'.join(map(str, e['loc'])).upper()}) = {e.get('input')!r}: {e['msg']}"
                     for e in error.errors())
