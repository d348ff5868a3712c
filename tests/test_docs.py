"""The documents speak about the software, and their commands run as written."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DOCUMENTS = [REPO / "README.md", REPO / "DESIGN.md", *sorted((REPO / "models").glob("*.md"))]
# Commands that need what a test has not got: a server, the public benchmark sets, a Docker engine,
# training time, or the network. Everything else in a ```bash block must run.
NEEDS_MORE = re.compile(r"--server|restore (serve|worker|train|export|quantize)|docker|curl|pip install|git clone|bash \.ci/run|"
                        r"python3 -m venv|--data [A-Z]|--real [A-Z]|--calibrate|http://|bench (service|speed)|cd |python samples/")
HISTORY = re.compile(r"\bsessions? \d|this session|session script|this host|'s host|\bissue \d|\.\./shared|\b20\d\d-\d\d-\d\d\b",
                     re.IGNORECASE)


def test_documents_exist_and_tell_no_history():
    assert (REPO / "LICENSE").is_file() and (REPO / "NOTICE").is_file()
    manifest = (REPO / "models" / "manifest.json").read_text()
    for path in [*DOCUMENTS, REPO / "models" / "manifest.json"]:
        text = manifest if path.suffix == ".json" else path.read_text()
        found = HISTORY.findall(text)
        assert not found, f"{path.name} says how the work went, or points outside the repository: {found[:5]}"


def test_every_shipped_model_has_a_card():
    import json

    for entry in json.loads((REPO / "models" / "manifest.json").read_text())["models"]:
        card = REPO / "models" / f"{entry['name']}.md"
        assert card.is_file(), f"no model card for {entry['name']}"
        text = card.read_text()
        for heading in ("## Training data", "## Evaluation", "## Limits"):
            assert heading in text, f"{card.name} has no {heading!r}"


def commands() -> list[tuple[str, str]]:
    found = []
    for path in DOCUMENTS:
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
            text = block.replace("\\\n", " ")
            for line in text.splitlines():
                line = line.split(" #")[0].strip()
                if line and not line.startswith("#") and not NEEDS_MORE.search(line):
                    found.append((path.name, line))
    return found


@pytest.mark.parametrize("where,command", commands())
def test_documented_commands_run_as_written(where, command, tmp_path):
    """Each command runs from a folder holding the repository's samples (as a fresh clone has them),
    with the installed `restore` first on the PATH."""
    for name in ("samples", "models"):
        os.symlink(REPO / name, tmp_path / name)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RESTORE_")},
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "RESTORE_THREADS": "2"}
    result = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{where}: {command}\n{result.stderr[-3000:]}"
    assert shlex.split(command)  # a well-formed shell line
