"""Batches through the service: the batches API, and `restore batch --server` against the in-process batch."""
import io
import json
import os
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import REPO
from tests.service.conftest import RESTORE, png_bytes, pixels, service_env


def test_batch_api_with_a_bad_file_and_the_archive(client, workers, identity_models, monkeypatch):
    files = [("files", (f"{n}.png", png_bytes(i), "image/png")) for i, n in enumerate(["a", "b", "a"])]
    files.append(("files", ("broken.png", b"\x89PNG\r\n\x1a\nnope", "image/png")))
    r = client.post("/v1/batches", files=files, data={"task": "denoise", "options": '{"format": "gif"}'})
    assert r.status_code == 400 and "unknown format 'gif'" in r.json()["detail"]  # the whole request, up front
    r = client.post("/v1/batches", files=files, data={"task": "denoise"})
    assert r.status_code == 202
    batch = r.json()
    assert [j["status"] for j in batch["jobs"]] == ["queued", "queued", "queued", "failed"]
    assert "corrupt" in batch["jobs"][3]["error"]
    assert client.get(f"/v1/batches/{batch['id']}/archive").status_code == 409  # no worker yet
    workers.start(identity_models)
    for _ in range(300):
        view = client.get(f"/v1/batches/{batch['id']}").json()
        if view["status"] == "done":
            break
        time.sleep(0.1)
    assert view["counts"]["succeeded"] == 3 and view["counts"]["failed"] == 1
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/v1/batches/{batch['id']}/archive").content))
    assert sorted(archive.namelist()) == ["a-2.png", "a.png", "b.png", "summary.json"]  # same names never collide
    assert (pixels(archive.read("b.png")) == pixels(png_bytes(1))).all()
    assert json.loads(archive.read("summary.json"))["counts"]["failed"] == 1
    import api.routes.batches

    monkeypatch.setattr(api.routes.batches, "ARCHIVE_IN_MEMORY", 100)  # spooled to disk: the same archive
    spooled = zipfile.ZipFile(io.BytesIO(client.get(f"/v1/batches/{batch['id']}/archive").content))
    assert {n: spooled.read(n) for n in spooled.namelist()} == {n: archive.read(n) for n in archive.namelist()}
    assert client.get("/v1/batches/unknown").status_code == 404


def run_batch(*args, env):
    return subprocess.run([RESTORE, "batch", *map(str, args)], env=env, capture_output=True, timeout=300)


def test_server_batch_matches_the_in_process_batch(tmp_path, live_api, workers):
    src = tmp_path / "in"
    shutil.copytree(REPO / "samples" / "noisy", src)
    (src / "sub").mkdir()
    Image.open(src / "chelsea.png").convert("RGBA").save(src / "sub" / "cat.tif")
    (src / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    env = service_env(None)
    local = run_batch(src, tmp_path / "local", "--recursive", env=env)
    workers.start(None)
    remote = run_batch(src, tmp_path / "remote", "--recursive", "--server", live_api, env=env)
    assert local.returncode == remote.returncode == 1, remote.stderr.decode()[-2000:]  # the broken file
    files = {d: json.loads((tmp_path / d / "restore-summary.json").read_text())["files"] for d in ("local", "remote")}
    same = {d: [(f["input"], f["status"], Path(f["output"]).relative_to(tmp_path / d)) for f in files[d]] for d in files}
    assert same["local"] == same["remote"]
    outputs = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*.*") if p.name != "restore-summary.json")
    assert len(outputs) == 6
    for rel in outputs:
        a, b = Image.open(tmp_path / "local" / rel), Image.open(tmp_path / "remote" / rel)
        assert a.format == b.format and a.mode == b.mode
        assert np.array_equal(np.asarray(a), np.asarray(b)), rel  # pixel for pixel


def test_server_batch_resumes_its_jobs(tmp_path, live_api, workers, identity_models, rdb):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(4):
        (src / f"{i}.png").write_bytes(png_bytes(i))
    env = service_env(identity_models)
    # No worker: the jobs are submitted, then the client is stopped while it waits for them.
    proc = subprocess.Popen([RESTORE, "batch", str(src), str(out), "--server", live_api], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / ".restore-batch-state.json"
    for _ in range(200):
        if state.exists() and len(json.loads(state.read_text())["jobs"]) == 4:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert rdb.get("restore:stats:submitted") == b"4"
    workers.start(identity_models)
    again = run_batch(src, out, "--server", live_api, env=env)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert rdb.get("restore:stats:submitted") == b"4"  # picked up, not sent again
    assert not state.exists()
    for i in range(4):
        assert (pixels((out / f"{i}.png").read_bytes()) == pixels(png_bytes(i))).all()


def test_server_batch_downloads_every_colorize_sample(tmp_path, live_api_tiny, workers, identity_models):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        (src / f"g{i}.png").write_bytes(png_bytes(i, mode="L"))
    env = service_env(identity_models)
    local = run_batch(src, tmp_path / "local", "--task", "colorize", "--options", '{"samples": 3, "seed": 4}', env=env)
    workers.start(identity_models)
    remote = run_batch(src, tmp_path / "remote", "--task", "colorize", "--options", '{"samples": 3, "seed": 4}',
                       "--server", live_api_tiny, env=env)
    assert local.returncode == remote.returncode == 0, remote.stderr.decode()[-2000:]
    names = sorted(p.name for p in (tmp_path / "remote").glob("*.png"))
    assert names == ["g0.png", "g0_1.png", "g0_2.png", "g1.png", "g1_1.png", "g1_2.png"]
    for name in names:
        assert np.array_equal(pixels((tmp_path / "local" / name).read_bytes()), pixels((tmp_path / "remote" / name).read_bytes()))


def test_server_batch_sends_each_photos_hints_and_matches_the_in_process_batch(tmp_path, live_api_tiny, workers, identity_models):
    from PIL import Image

    src, hints = tmp_path / "in", tmp_path / "hints"
    src.mkdir(), hints.mkdir()
    for i in range(2):
        (src / f"g{i}.png").write_bytes(png_bytes(i, mode="L"))
    painted = np.zeros((32, 48, 4), np.uint8)
    painted[4:7, 5:8] = (200, 40, 40, 255)
    Image.fromarray(painted).save(hints / "g0.png")  # g1 has none: it runs without
    env = service_env(identity_models)
    local = run_batch(src, tmp_path / "local", "--task", "colorize", "--hints", str(hints), env=env)
    workers.start(identity_models)
    remote = run_batch(src, tmp_path / "remote", "--task", "colorize", "--hints", str(hints), "--server", live_api_tiny, env=env)
    assert local.returncode == remote.returncode == 0, remote.stderr.decode()[-2000:]
    summary = json.loads((tmp_path / "remote" / "restore-summary.json").read_text())
    assert [f["metrics"]["tasks"][0]["hinted_pixels"] for f in summary["files"]] == [9, 0]
    for name in ("g0.png", "g1.png"):
        assert np.array_equal(pixels((tmp_path / "local" / name).read_bytes()), pixels((tmp_path / "remote" / name).read_bytes()))
