"""The service client's failure handling, against canned HTTP answers (the live service is in tests/service)."""
import json

import httpx
import numpy as np
from PIL import Image
from typer.testing import CliRunner

import restore.api.client
from restore.api.client import ServiceClient, run_remote_batch
from restore.batch import plan_batch
from restore.cli import app


def folder(tmp_path, n=3):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(n):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(src / f"{i}.png")
    return src


def test_a_503_without_retry_after_is_the_files_answer_not_an_outage(tmp_path, monkeypatch):
    """No model for the task: each file fails with the server's reason, at once, and the batch goes on."""
    monkeypatch.setattr(restore.api.client.time, "sleep", lambda s: None)
    calls = []

    def answer(request):
        calls.append(request.url.path)
        return httpx.Response(503, json={"detail": "no model for task 'colorize' in the manifest"})

    client = ServiceClient("http://service")
    client.http = httpx.Client(base_url="http://service", transport=httpx.MockTransport(answer))
    src = folder(tmp_path)
    outcomes = run_remote_batch(plan_batch(src, tmp_path / "out"), client, "colorize", {}, None, tmp_path / "out")
    assert [o.status for o in outcomes] == ["failed"] * 3 and len(calls) == 3  # one request per file, no retries
    assert "no model for task 'colorize'" in outcomes[0].error


def test_an_unreachable_service_stops_the_batch_with_a_summary(tmp_path, monkeypatch):
    monkeypatch.setattr(restore.api.client, "RETRIES", 2)
    monkeypatch.setattr(restore.api.client.time, "sleep", lambda s: None)
    src, out = folder(tmp_path), tmp_path / "out"
    result = CliRunner().invoke(app, ["batch", str(src), str(out), "--server", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    summary = json.loads((out / "restore-summary.json").read_text())
    assert summary["failed"] == 3 and all("run the same command again" in f["error"] for f in summary["files"])
