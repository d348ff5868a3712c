"""A plain (non-editable) install must carry the models: build the wheel and look inside."""
import json
import subprocess
import sys
import zipfile

from conftest import REPO


def test_wheel_ships_models_and_manifest(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
                   check=True, cwd=tmp_path, timeout=300)
    wheel = next(tmp_path.glob("restore-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    assert "restore/_models/manifest.json" in names
    for entry in manifest["models"]:
        assert f"restore/_models/{entry['file']}" in names
    assert not any(n.endswith(".pt") for n in names)  # checkpoints stay in the repository
    sources = {p.relative_to(REPO).as_posix() for pkg in ("restore", "workers", "api") for p in (REPO / pkg).rglob("*.py")}
    assert sources <= names, f"modules missing from the wheel (list their package in pyproject.toml): {sources - names}"
    assert not any(n.startswith("tests/") for n in names)
