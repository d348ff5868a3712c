"""The one place a task runs. The CLI, the batch runner, the workers, the service's pre-check and the
Python API all call it: `plan` checks a request without its image, `check` fits it to an image's size,
`run` runs it on a decoded picture, `process` decodes, runs and encodes.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import BinaryIO

import numpy as np

from restore.errors import InputError
from restore.guidance import KINDS, hints_from, mask_from
from restore.io import FORMATS, Limits, Picture, check_encodable, encode_image, format_for_path, read_image
from restore.tasks import TASKS, get_task
from restore.tasks.base import Context, Options, parse_options

MAX_CHAIN = 4  # tasks in one chain
MAX_RESULTS = 8  # images one input may give (colorize's samples, through a chain)
MAX_OPTIONS_BYTES = 64 * 1024
MAX_OPTIONS_DEPTH = 8
PARSERS = {"mask": mask_from, "hints": hints_from}  # guidance kind -> its parsed form

Source = str | os.PathLike | bytes | BinaryIO


@dataclass(frozen=True)
class Plan:
    """A checked request: the chain, each step's options, and the output format (None: the input's)."""

    tasks: tuple[str, ...]
    options: tuple[Options, ...]  # one per step of the chain
    format: str | None = None
    guidance: tuple[str, ...] = ()  # the guidance kinds the request brings

    @property
    def results(self) -> int:
        """How many images one input gives: the product of the steps' counts (colorize's samples)."""
        return math.prod(get_task(t).results(o) for t, o in zip(self.tasks, self.options))


@dataclass
class Result:
    pictures: list[Picture]  # the restored image first; more than one only for sampled tasks
    metrics: dict = field(default_factory=dict)

    @property
    def picture(self) -> Picture:
        return self.pictures[0]


def options_from_json(text: str | bytes | None) -> dict:
    """Options as the CLI's --options and the service's options field carry them: a JSON object, at most
    MAX_OPTIONS_BYTES long and MAX_OPTIONS_DEPTH deep (checked before parsing: a deep nest would exhaust
    the parser's stack)."""
    if not text:
        return {}
    if len(text) > MAX_OPTIONS_BYTES:
        raise InputError(f"options are {len(text):,} bytes of JSON; the limit is {MAX_OPTIONS_BYTES:,}")
    depth = deepest = 0
    quoted = escaped = False
    for ch in text.decode("utf-8", "replace") if isinstance(text, bytes) else text:
        if quoted:
            escaped, quoted = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            quoted = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_OPTIONS_DEPTH:
        raise InputError(f"options are nested {deepest} deep; the limit is {MAX_OPTIONS_DEPTH}")
    try:
        options = json.loads(text)
    except ValueError as e:
        raise InputError(f"options are not valid JSON: {e}") from None
    if not isinstance(options, dict):
        raise InputError("options must be a JSON object")
    return options


def parse_tasks(spec: str | Sequence[str]) -> tuple[str, ...]:
    """'dewatermark,denoise' or ['dewatermark', 'denoise'] -> validated task names, in order."""
    if not isinstance(spec, str) and not all(isinstance(n, str) for n in spec):
        raise InputError("the task must be a name or a comma-separated chain of names")
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec)]
    if not any(names):
        raise InputError(f"no task given; choose from {', '.join(TASKS)}, or a chain such as dewatermark,denoise")
    if not all(names):
        raise InputError(f"an empty name in the chain {spec!r}")
    if len(names) > MAX_CHAIN:
        raise InputError(f"a chain of {len(names)} tasks; the limit is {MAX_CHAIN}")
    for name in names:
        get_task(name)
    return tuple(names)


def plan(tasks: str | Sequence[str], options: Mapping | None = None, guidance: Sequence[str] = ()) -> Plan:
    """Check a request without its image: task names, each task's options (a key goes to every task in
    the chain that declares it; one that none declares is an error), the output format (the `format`
    key), the guidance the request brings (a kind no task in the chain takes is an error), and how many
    results it makes. Raises InputError."""
    names = parse_tasks(tasks)
    options = dict(options or {})
    fmt = options.pop("format", None) or None
    if fmt is not None and (not isinstance(fmt, str) or fmt.lower().lstrip(".") not in FORMATS):
        raise InputError(f"unknown format {fmt!r}; choose from {', '.join(sorted(FORMATS))}")
    declared = {k for n in names for k in get_task(n).options.keys()}
    unknown = set(options) - declared
    if unknown:
        valid = {k for n in names for k in get_task(n).options.model_fields} | {"format"}
        raise InputError(f"unknown option(s) {', '.join(sorted(unknown))} for {','.join(names)}; valid: {', '.join(sorted(valid))}")
    parsed = tuple(parse_options(get_task(n).options, n, {k: v for k, v in options.items() if k in get_task(n).options.keys()})
                   for n in names)
    for kind in guidance:
        takers = [t.name for t in TASKS.values() if kind in t.guidance]
        if kind not in KINDS:
            raise InputError(f"unknown guidance {kind!r}; known: {', '.join(KINDS)}")
        if not any(kind in get_task(n).guidance for n in names):
            raise InputError(f"a {kind} is used only by {', '.join(takers)}, which is not in {','.join(names)}")
    result = Plan(names, parsed, fmt.lower().lstrip(".") if fmt else None, tuple(guidance))
    if result.results > MAX_RESULTS:
        raise InputError(f"{','.join(names)} with these options makes {result.results} images per input; the limit is {MAX_RESULTS}")
    return result


def check(request: Plan, size: tuple[int, int], guidance_sizes: Mapping[str, tuple[int, int]] | None = None,
          source_format: str = "PNG", target: str | os.PathLike | None = None) -> str:
    """Fit a plan to an image of `size` (width, height): each guidance image must be its size, each task's
    options must fit it, and the output format must hold it. Returns that format's name."""
    for kind, other in (guidance_sizes or {}).items():
        if tuple(other) != tuple(size):
            raise InputError(f"the {kind} is {other[0]}x{other[1]}, the image {size[0]}x{size[1]}; they must match")
    for name, options in zip(request.tasks, request.options):
        task = get_task(name)
        if task.check:
            task.check(options, size)
    suffix = format_for_path(target) if target is not None and os.fspath(target) != "-" else None
    return check_encodable(size, request.format or suffix or source_format)


def run(request: Plan | str | Sequence[str], picture: Picture, options: Mapping | None, ctx: Context,
        guidance: Mapping[str, Picture] | None = None) -> Result:
    """Run a chain on a picture. Each result keeps the input's size, bit depth, alpha and format
    (colorize turns gray into colour). A task that samples several answers (colorize) gives several
    results; the tasks after it in the chain run on each. guidance: pictures of the photo's size, by
    kind (restore.guidance), for the tasks that take them. metrics["tasks"] lists each step in order."""
    guidance = dict(guidance or {})
    if not isinstance(request, Plan):
        request = plan(request, options, tuple(guidance))
    elif options:
        raise ValueError("options belong in the plan")
    check(request, picture.size, {k: g.size for k, g in guidance.items()}, picture.format)
    parsed = {kind: PARSERS[kind](g) for kind, g in guidance.items()}
    width, height = picture.size
    metrics: dict = {"tasks": [], "width": width, "height": height}
    started = time.perf_counter()
    colors = [picture.color]
    for name, options_ in zip(request.tasks, request.options):
        t0 = time.perf_counter()
        task = get_task(name)
        given = {kind: parsed.get(kind) for kind in task.guidance}
        results = [task.run(color, options_, ctx, given) for color in colors]
        colors = [c for out, _ in results for c in out]
        metrics["tasks"].append({"task": name, **results[0][1], "seconds": round(time.perf_counter() - t0, 3)})
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    return Result([replace(picture, color=color) for color in colors], metrics)


@dataclass
class Output:
    """What `process` made: each result encoded, in `format`, and the run's metrics."""

    blobs: list[bytes]
    format: str
    metrics: dict


def decode(source: Source, request: Plan, limits: Limits, guidance: Mapping[str, Source] | None = None,
           target: str | os.PathLike | None = None) -> tuple[Picture, dict[str, Picture], str]:
    """Decode the image and its guidance and check the plan against them: (picture, guidance pictures,
    output format). Everything wrong with the input is an InputError here, before any model runs."""
    picture = read_image(source, limits)
    pictures = {kind: read_image(g, limits) for kind, g in (guidance or {}).items()}
    fmt = check(request, picture.size, {k: g.size for k, g in pictures.items()}, picture.format, target)
    return picture, pictures, fmt


def process(source: Source, request: Plan, ctx: Context, guidance: Mapping[str, Source] | None = None,
            target: str | os.PathLike | None = None, quality: int = 95) -> Output:
    """Decode, check, run and encode: the whole of one job. The format is the plan's, else the suffix of
    `target` (a path the caller will write), else the input's own."""
    limits = Limits(ctx.settings.max_bytes, ctx.settings.max_pixels)
    picture, pictures, fmt = decode(source, request, limits, guidance, target)
    result = run(request, picture, None, ctx, pictures)
    return Output([encode_image(p, fmt, quality) for p in result.pictures], fmt, result.metrics)


def as_picture(array: np.ndarray) -> Picture:
    """A numpy image as a Picture: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of uint8 or uint16."""
    if array.dtype not in (np.uint8, np.uint16):
        raise InputError(f"an image array must be uint8 or uint16, not {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), not {array.shape}")
    has_alpha = array.shape[2] in (2, 4)
    color = array[..., :-1] if has_alpha else array
    return Picture(np.ascontiguousarray(color), np.ascontiguousarray(array[..., -1]) if has_alpha else None, "PNG")
