"""The task registry: one module per task, each with NAME, an Options class and run()."""
from __future__ import annotations

from types import ModuleType

from restore.errors import InputError
from restore.tasks import denoise, dewatermark

TASKS: dict[str, ModuleType] = {denoise.NAME: denoise, dewatermark.NAME: dewatermark}
OPTIONS = {denoise.NAME: denoise.DenoiseOptions, dewatermark.NAME: dewatermark.DewatermarkOptions}


def get_task(name: str) -> ModuleType:
    try:
        return TASKS[name]
    except KeyError:
        raise InputError(f"unknown task {name!r}; choose from {', '.join(TASKS)}") from None
