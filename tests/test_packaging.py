"""What a user installs: one top-level package with the models and the web page inside, the licence files,
and a core that works without the service extra."""
import json
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Built from a copy of the source, as a fresh clone has it: a build/ folder left by an earlier build
    in the working tree would be packed again."""
    source, out = tmp_path_factory.mktemp("source") / "restore", tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "runs", "out", "test-artifacts",
                                                                "*.egg-info", "__pycache__", "checkpoints"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)], check=True, cwd=out, timeout=600)
    return next(out.glob("restore_photos-*.whl"))


def test_the_wheel_installs_one_top_level_package_with_everything_inside(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"restore"}
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    assert "restore/_models/manifest.json" in names
    for entry in manifest["models"]:
        assert f"restore/_models/{entry['file']}" in names
        assert f"restore/_models/{entry['name']}.md" in names  # its model card
    assert not any(n.endswith(".pt") for n in names)  # checkpoints stay in the repository
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "restore").rglob("*.py")}
    sources |= {"restore/" + p.relative_to(REPO).as_posix() for pkg in ("workers", "api") for p in (REPO / pkg).rglob("*.py")}
    assert sources <= names, f"modules missing from the wheel (list their package in pyproject.toml): {sources - names}"
    assert "restore/api/static/index.html" in names and "restore/py.typed" in names
    info = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert {info.replace("METADATA", f"licenses/{f}") for f in ("LICENSE", "NOTICE")} <= names
    metadata = zipfile.ZipFile(wheel).read(info).decode()
    assert "Name: restore-photos" in metadata and "License-Expression: MIT" in metadata
    assert "Requires-Dist: fastapi" in metadata and "extra == \"service\"" in metadata.split("Requires-Dist: fastapi")[1].split("\n")[0]


def test_the_library_and_the_cli_need_no_service_package(tmp_path):
    """With FastAPI, uvicorn, Celery, Redis and prometheus made unimportable, the Python API still
    restores an image and the command line still runs."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "for name in ('fastapi', 'uvicorn', 'celery', 'redis', 'prometheus_client', 'kombu', 'starlette'):\n"
        "    sys.modules[name] = None\n"
    )
    script = (
        "import numpy as np\n"
        "from restore import denoise\n"
        "noisy = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)\n"
        "out = denoise(noisy)\n"
        "assert out.shape == noisy.shape and out.dtype == np.uint8 and not np.array_equal(out, noisy)\n"
        "print('ok')\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin", "RESTORE_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
    result = subprocess.run([sys.executable, "-m", "restore", "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "needs the service extra" in result.stderr and "restore-photos[service]" in result.stderr
