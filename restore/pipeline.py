"""The one place a task runs. The CLI, the batch runner, the workers and the tests all call `run`."""
from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from restore.errors import InputError
from restore.io import Picture
from restore.tasks import OPTIONS, get_task
from restore.tasks.base import Context, parse_options


@dataclass
class Result:
    pictures: list[Picture]  # the restored image first; more than one only for sampled tasks
    metrics: dict = field(default_factory=dict)

    @property
    def picture(self) -> Picture:
        return self.pictures[0]


def options_from_json(text: str | None) -> dict:
    """Options as the CLI's --options and the API's options field carry them: a JSON object."""
    if not text:
        return {}
    try:
        options = json.loads(text)
    except ValueError as e:
        raise InputError(f"options are not valid JSON: {e}") from None
    if not isinstance(options, dict):
        raise InputError("options must be a JSON object")
    return options


def parse_tasks(spec: str | Sequence[str]) -> list[str]:
    """'dewatermark,denoise' or ['dewatermark', 'denoise'] -> validated task names, in order."""
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    if not names:
        raise InputError("no task given")
    for name in names:
        get_task(name)
    return names


def split_options(tasks: list[str], options: Mapping | None) -> dict[str, dict]:
    """Give each task the option keys it declares; a key no task in the chain knows is an error."""
    options = dict(options or {})
    per_task = {t: {k: v for k, v in options.items() if k in OPTIONS[t].model_fields} for t in tasks}
    unknown = set(options) - {k for t in tasks for k in OPTIONS[t].model_fields}
    if unknown:
        valid = sorted({k for t in tasks for k in OPTIONS[t].model_fields})
        raise InputError(f"unknown option(s) {', '.join(sorted(unknown))} for {','.join(tasks)}; valid: {', '.join(valid)}")
    return per_task


def validate(tasks: str | Sequence[str], options: Mapping | None) -> tuple[list[str], dict]:
    """Check a request without running it: task names, and each task's options. Raises InputError."""
    names = parse_tasks(tasks)
    return names, {t: parse_options(OPTIONS[t], t, opts) for t, opts in split_options(names, options).items()}


def result_count(parsed: Mapping) -> int:
    """How many pictures a validated chain gives per input: the product of its tasks' samples (colorize)."""
    return math.prod(getattr(options, "samples", 1) for options in parsed.values())


def check_mask(names: list[str], mask: Picture, picture: Picture) -> np.ndarray:
    """A user's mask as (H, W) float in [0, 1], white (opaque) where the damage is. InputError if no task
    in the chain takes a mask or the sizes differ."""
    if not any(getattr(get_task(n), "USES_MASK", False) for n in names):
        raise InputError(f"a mask is used only by {', '.join(t for t in OPTIONS if getattr(get_task(t), 'USES_MASK', False))}")
    if mask.size != picture.size:
        raise InputError(f"the mask is {mask.size[0]}x{mask.size[1]}, the image {picture.size[0]}x{picture.size[1]}; they must match")
    top = float(np.iinfo(mask.color.dtype).max)
    m = mask.color.astype(np.float32).mean(axis=2) / top
    return m * (mask.alpha / top) if mask.alpha is not None else m


def run(tasks: str | Sequence[str], picture: Picture, options: Mapping | None, ctx: Context, mask: Picture | None = None) -> Result:
    """Run a task chain on a picture. Each result keeps the input's size, bit depth, alpha and format
    (colorize turns gray into colour). A task that samples several answers (colorize) gives several
    results; the tasks after it in the chain run on each. mask: the user's mask of the damage, for the
    tasks that take one (dewatermark)."""
    names, parsed = validate(tasks, options)
    hint = check_mask(names, mask, picture) if mask is not None else None
    width, height = picture.size
    metrics: dict = {"tasks": {}, "width": width, "height": height}
    started = time.perf_counter()
    colors = [picture.color]
    for name in names:
        t0 = time.perf_counter()
        task = get_task(name)
        args = (hint,) if hint is not None and getattr(task, "USES_MASK", False) else ()
        results = [task.run(color, parsed[name], ctx, *args) for color in colors]
        colors = [c for out, _ in results for c in (out if isinstance(out, list) else [out])]
        task_metrics = results[0][1]
        task_metrics["seconds"] = round(time.perf_counter() - t0, 3)
        metrics["tasks"][name] = task_metrics
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    return Result([replace(picture, color=color) for color in colors], metrics)
