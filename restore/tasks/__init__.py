"""The task registry: every task is declared once (restore.tasks.base.Task) and listed here."""
from __future__ import annotations

from restore.errors import InputError
from restore.tasks import colorize, denoise, dewatermark
from restore.tasks.base import Task

TASKS: dict[str, Task] = {t.name: t for t in (denoise.TASK, dewatermark.TASK, colorize.TASK)}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise InputError(f"unknown task {name!r}; choose from {', '.join(TASKS)}") from None
