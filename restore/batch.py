"""Folder batches: plan which file goes where, run each one, never stop on one file's error, summarise."""
from __future__ import annotations

import fnmatch
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from restore.errors import RestoreError
from restore.io import FORMATS

IMAGE_GLOBS = tuple(f"*.{suffix}" for suffix in FORMATS)
SUMMARY = "restore-summary.json"


@dataclass(frozen=True)
class BatchItem:
    source: Path
    target: Path


@dataclass
class Outcome:
    input: str
    output: str
    status: str  # ok | skipped | failed
    error: str | None = None
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)


def _matches(name: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(name.lower(), g.lower()) for g in globs)


def find_images(in_dir: Path, recursive: bool = False, include: Iterable[str] = (), exclude: Path | None = None) -> list[Path]:
    """Image files under in_dir, sorted; hidden files and anything under `exclude` left out."""
    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise RestoreError(f"input folder {in_dir} does not exist or is not a folder")
    globs = tuple(include) or IMAGE_GLOBS
    excluded = exclude.resolve() if exclude else None
    candidates = in_dir.rglob("*") if recursive else in_dir.iterdir()
    return sorted(
        p
        for p in candidates
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(in_dir).parts)
        and (excluded is None or excluded not in p.resolve().parents)  # never feed our own outputs back in
        and _matches(p.name, globs)
    )


def plan_batch(in_dir: Path, out_dir: Path, recursive: bool = False, include: Iterable[str] = (), suffix: str | None = None) -> list[BatchItem]:
    """Inputs under in_dir (subfolders mirrored with recursive) and the output path of each.

    With a new suffix two inputs can meet on one name (a.jpg and a.png -> a.webp): those keep their
    old suffix in the name (a.jpg.webp). Whatever still meets (see `overwrites`) fails on its own.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if in_dir.is_dir() and out_dir.resolve() == in_dir.resolve():
        raise RestoreError(f"the output folder is the input folder ({in_dir}): the results would replace the originals; choose another")
    # An output folder inside the input folder holds our earlier results: never feed them back in.
    inside = in_dir.resolve() in out_dir.resolve().parents
    sources = find_images(in_dir, recursive, include, exclude=out_dir if inside else None)
    if not sources:
        kinds = ", ".join(include) if include else "images"
        raise RestoreError(f"no {kinds} found in {in_dir}" + ("" if recursive else " (add --recursive for subfolders)"))
    targets = [out_dir / p.relative_to(in_dir) for p in sources]
    if suffix:
        renamed = [t.with_suffix(suffix) for t in targets]
        clashes = {t for t in renamed if renamed.count(t) > 1}
        targets = [t.with_name(t.name + suffix) if r in clashes else r for t, r in zip(targets, renamed)]
    return [BatchItem(s, t) for s, t in zip(sources, targets)]


def sample_path(target: Path, index: int) -> Path:
    """Where result `index` of a sampled task goes: the target itself first, then name_1.ext, name_2.ext, ..."""
    target = Path(target)
    return target if index == 0 else target.with_name(f"{target.stem}_{index}{target.suffix}")


def overwrites(items: list[BatchItem], results: int = 1) -> dict[BatchItem, str]:
    """The items whose outputs (each of `results` names) would overwrite an input file or an earlier
    item's output, each with the reason: a.jpg and a.jpg.webp can both end as a.jpg.webp, and b.png's
    second colouring is b_1.png, which is also b_1.png's output. The earlier item keeps its names; the
    later one fails on its own, so nothing is lost and the rest of the batch runs."""
    inputs = {item.source.resolve(): item.source for item in items}
    claimed: dict[Path, Path] = {}
    refused = {}
    for item in items:
        names = [sample_path(item.target, i).resolve() for i in range(results)]
        hit = next((n for n in names if n in claimed or n in inputs), None)
        if hit is None:
            claimed.update(dict.fromkeys(names, item.source))
        else:
            whose = f"the input {inputs[hit]}" if hit in inputs else f"the result of {claimed[hit]}"
            refused[item] = f"its output {hit} would overwrite {whose}; rename one of them or choose another output folder"
    return refused


def guidance_for(source: Path, in_dir: Path, folders: dict[str, Path]) -> dict[str, Path]:
    """The guidance files of one photo: in each folder, the file at the photo's relative path with the
    same name, or the same stem and any image suffix (a.jpg's mask may be a.png). Kinds with none are left out."""
    relative = Path(source).relative_to(in_dir)
    found = {}
    for kind, folder in folders.items():
        exact = folder / relative
        candidates = [exact] + [exact.with_suffix("." + s) for s in FORMATS]
        match = next((c for c in candidates if c.is_file()), None)
        if match is not None:
            found[kind] = match
    return found


def already_done(item: BatchItem) -> bool:
    """An output that exists is whole (outputs are written atomically), so --skip-existing can trust it."""
    return item.target.is_file() and item.target.stat().st_size > 0


def run_batch(
    items: list[BatchItem],
    process: Callable[[BatchItem], dict],
    skip_existing: bool = False,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """process(item) restores one file and returns its metrics; any error is recorded, not raised."""
    outcomes = []
    for item in items:
        outcome = Outcome(str(item.source), str(item.target), "ok")
        if skip_existing and already_done(item):
            outcome.status = "skipped"
        else:
            t0 = time.perf_counter()
            try:
                outcome.metrics = process(item)
            except RestoreError as e:
                outcome.status, outcome.error = "failed", str(e)
            except Exception as e:  # a bug must not stop the other files either, but it must say where
                outcome.status = "failed"
                outcome.error = f"internal error: {e!r}\n{traceback.format_exc(limit=5)}"
            outcome.seconds = round(time.perf_counter() - t0, 3)
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)
    return outcomes


def summarize(outcomes: list[Outcome], **header) -> dict:
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "skipped", "failed")}
    return {**header, "total": len(outcomes), **counts, "files": [asdict(o) for o in outcomes]}
