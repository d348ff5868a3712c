"""The task registry: one module per task, each with NAME, an Options class and run()."""
from __future__ import annotations

from types import ModuleType

from restore.errors import InputError
from restore.tasks import denoise

TASKS: dict[str, ModuleType] = {denoise.NAME: denoise}
OPTIONS = {denoise.NAME: denoise.DenoiseOptions}


def get_task(name: str) -> ModuleType:
    try:
        return TASKS[name]
    except KeyError:
        raise InputError(f"unknown task {name!r}; choose from {', '.join(TASKS)}") from None
