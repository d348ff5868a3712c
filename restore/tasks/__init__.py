"""The task registry: one module per task, each with NAME, an Options class and run().

run(image, options, ctx[, mask]) returns (image, metrics), or (list of images, metrics) for a task that
samples several answers (colorize)."""
from __future__ import annotations

from types import ModuleType

from restore.errors import InputError
from restore.tasks import colorize, denoise, dewatermark

TASKS: dict[str, ModuleType] = {denoise.NAME: denoise, dewatermark.NAME: dewatermark, colorize.NAME: colorize}
OPTIONS = {
    denoise.NAME: denoise.DenoiseOptions,
    dewatermark.NAME: dewatermark.DewatermarkOptions,
    colorize.NAME: colorize.ColorizeOptions,
}


def get_task(name: str) -> ModuleType:
    try:
        return TASKS[name]
    except KeyError:
        raise InputError(f"unknown task {name!r}; choose from {', '.join(TASKS)}") from None
