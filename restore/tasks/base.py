"""What every task shares: the run context, option parsing, and running a model over tiles."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException
from pydantic import BaseModel, ConfigDict, ValidationError

from restore.engine import Engine, Session
from restore.errors import InputError
from restore.models import ModelInfo, model_for_task
from restore.settings import Settings
from restore.tiling import TileFn, Tiler, tile_for_budget, tiled_run

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
MEMORY_RETRIES = 3


class Options(BaseModel):
    """Base of each task's options: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    RENAMED: ClassVar[tuple[str, ...]] = ()  # old option names the model still answers (with a value or a pointer to the new one)

    @classmethod
    def keys(cls) -> set[str]:
        """The option names a request may use for this task."""
        return set(cls.model_fields) | set(cls.RENAMED)


def parse_options(cls: type[Options], task: str, values: dict) -> Options:
    try:
        return cls(**values)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'options'}: {err['msg']}" for err in e.errors())
        raise InputError(f"bad options for {task}: {problems}") from None


@dataclass(frozen=True)
class Task:
    """What a task is, declared once: the CLI, the pipeline, the API and the web page learn from it.

    run(image, options, ctx, guidance) -> (results, metrics): image is (H, W, C) uint8/uint16/float32,
    guidance maps each guidance kind the task takes (restore.guidance) to its parsed form or None; results
    are a list of images of the image's size (several for a task that samples several answers).
    check(options, size): refuse options that do not fit an image of this (width, height) before any work.
    """

    name: str
    summary: str
    options: type[Options]
    run: Callable[..., tuple[list[np.ndarray], dict]]
    guidance: tuple[str, ...] = ()
    example: str = ""
    check: Callable[[Options, tuple[int, int]], None] | None = None

    def results(self, options: Options) -> int:
        """How many images one input gives."""
        return int(getattr(options, "samples", 1))


@dataclass
class Context:
    """Everything a task needs besides its input: settings, the process's engine, a progress sink."""

    settings: Settings
    engine: Engine
    progress: Progress | None = None

    @classmethod
    def create(cls, settings: Settings) -> Context:
        return cls(settings, Engine(settings))

    def session(self, task: str) -> Session:
        return self.engine.session(model_for_task(task, self.settings.models_dir))

    def tiler(self, model: ModelInfo) -> Tiler:
        side = tile_for_budget(
            self.settings.memory_budget_mb * 2**20,
            float(model.input.get("bytes_per_pixel", 1024)),
            model.stride,
            self.settings.tile_size,
        )
        overlap = min(self.settings.tile_overlap, side // 4)
        return Tiler(side, overlap, model.stride)


def run_tiled(ctx: Context, session: Session, image: np.ndarray, fn: TileFn) -> np.ndarray:
    """tiled_run with the context's tiler; when ONNX Runtime runs out of memory, halve the tile and retry."""
    tiler = ctx.tiler(session.model)
    for attempt in range(MEMORY_RETRIES + 1):
        try:
            return tiled_run(image, fn, tiler, ctx.progress)
        except (MemoryError, RuntimeException) as e:
            if "alloc" not in str(e).lower() and not isinstance(e, MemoryError) or attempt == MEMORY_RETRIES:
                raise
            smaller = max(tiler.multiple, tiler.tile // 2 // tiler.multiple * tiler.multiple)
            log.warning("out of memory at tile %d; retrying at %d", tiler.tile, smaller)
            tiler = Tiler(smaller, min(tiler.overlap, smaller // 4), tiler.multiple)
    raise AssertionError("unreachable")
