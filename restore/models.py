"""Model registry: models/manifest.json lists every shipped model; files are checked against their sha256."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path

from restore.errors import ModelError

MANIFEST = "manifest.json"


def default_models_dir() -> Path:
    """The models shipped with the package: inside it when installed, ../models in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_models", here.parent / "models"):
        if (candidate / MANIFEST).is_file():
            return candidate
    raise ModelError(f"no {MANIFEST} found in {here / '_models'} or {here.parent / 'models'}; set RESTORE_MODELS_DIR")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    task: str
    file: str
    sha256: str
    input: dict
    output: dict
    path: Path
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    # Other precisions of the same model: {"int8": {"file", "sha256", ...}, "fp16": {...}}; the entry's own
    # file is fp32.
    variants: dict = field(default_factory=dict)
    precision: str = "fp32"  # which of them this is

    @property
    def stride(self) -> int:
        return int(self.input.get("multiple_of", 1))

    def variant(self, precision: str) -> ModelInfo:
        """This model in another precision (fp32 is the entry itself); ModelError if it has none."""
        if precision == "fp32":
            return self
        found = self.variants.get(precision)
        if found is None:
            have = ", ".join(["fp32", *self.variants])
            raise ModelError(f"model {self.name}@{self.version} has no {precision} variant (it has {have})")
        return replace(self, file=found["file"], sha256=found["sha256"], path=self.path.with_name(found["file"]),
                       variants={}, precision=precision)


def load_manifest(models_dir: Path | None = None) -> dict[str, ModelInfo]:
    folder = Path(models_dir) if models_dir else default_models_dir()
    try:
        entries = json.loads((folder / MANIFEST).read_text())["models"]
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"cannot read {folder / MANIFEST}: {e}") from e
    known = {f.name for f in fields(ModelInfo)} - {"path", "precision"}
    try:
        return {e["name"]: ModelInfo(**{k: v for k, v in e.items() if k in known}, path=folder / e["file"]) for e in entries}
    except (KeyError, TypeError) as e:
        raise ModelError(f"{folder / MANIFEST} has an entry without {e}") from e


def model_for_task(task: str, models_dir: Path | None = None) -> ModelInfo:
    """The model a task runs: the manifest entry whose task matches (the newest version if several)."""
    found = sorted((m for m in load_manifest(models_dir).values() if m.task == task), key=_version_key)
    if not found:
        raise ModelError(f"no model for task {task!r} in the manifest")
    return found[-1]


def _version_key(model: ModelInfo) -> tuple:
    """'10' after '9': numbered parts compare as numbers."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\-]", model.version))


@lru_cache(maxsize=None)
def _sha256(path: Path, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(model: ModelInfo) -> None:
    """Raise ModelError unless the file exists and its sha256 is the manifest's."""
    try:
        st = model.path.stat()
    except OSError:
        raise ModelError(f"model {model.name}: file {model.path} is missing") from None
    actual = _sha256(model.path, st.st_mtime_ns, st.st_size)
    if actual != model.sha256:
        raise ModelError(f"model {model.name}: {model.path} has sha256 {actual[:12]}..., the manifest says {model.sha256[:12]}...; re-export or fix the manifest")
