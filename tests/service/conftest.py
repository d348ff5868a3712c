"""The service against the real Redis on 127.0.0.1:6379 (database 13, flushed per test) and real
Celery worker processes started with the `restore worker` command."""
from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image

from restore.api.main import create_app
from restore.workers.registry import live_workers
from restore.workers.settings import ServiceSettings

REDIS_URL = "redis://127.0.0.1:6379/13"
RESTORE = str(Path(sys.executable).parent / "restore")


@pytest.fixture
def rdb():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("these tests need Redis on 127.0.0.1:6379 (.ci/run starts it)")
    client.flushdb()
    yield client
    client.flushdb()


def service_env(models_dir: Path | None, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTORE_")}
    env.update({"RESTORE_REDIS_URL": REDIS_URL, "RESTORE_THREADS": "1", "RESTORE_DEVICE": "cpu"})
    if models_dir:
        env["RESTORE_MODELS_DIR"] = str(models_dir)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Workers:
    """Starts `restore worker` processes (each in its own process group) and stops them all."""

    def __init__(self, rdb):
        self.rdb = rdb
        self.procs: list[subprocess.Popen] = []

    def start(self, models_dir: Path | None, concurrency: int = 1, wait: bool = True, **env) -> subprocess.Popen:
        before = len(live_workers(self.rdb))
        proc = subprocess.Popen([RESTORE, "worker", "--queues", "cpu", "--concurrency", str(concurrency), "--loglevel", "WARNING"],
                                env=service_env(models_dir, **env), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while wait and len(live_workers(self.rdb)) <= before:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited: {proc.stderr.read().decode()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError("worker did not announce itself in 60 s")
            time.sleep(0.2)
        return proc

    def kill(self, proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
        os.killpg(proc.pid, sig)
        proc.wait(30)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(15)


@pytest.fixture
def workers(rdb):
    w = Workers(rdb)
    yield w
    w.stop_all()


@pytest.fixture
def client(rdb, identity_models):
    app = create_app(ServiceSettings(_env_file=None, redis_url=REDIS_URL, models_dir=identity_models))
    with TestClient(app) as c:
        yield c


def png_bytes(seed: int = 0, size=(48, 32), mode="RGB") -> bytes:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], len(mode)) if mode != "L" else (size[1], size[0])
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buf, "PNG")
    return buf.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def wait_for(client, job_id: str, states=("succeeded", "failed", "canceled"), timeout: float = 60, headers=None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if body.get("status") in states:
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {body.get('status')} after {timeout} s: {body}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(models_dir: Path | None):
    """`restore serve` on a free port with these models (None: the shipped ones); yields its base URL."""
    import httpx

    port = free_port()
    proc = subprocess.Popen([RESTORE, "serve", "--port", str(port)], env=service_env(models_dir), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                httpx.get(base + "/healthz")
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stderr.read().decode()[-3000:])
                time.sleep(0.1)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


@pytest.fixture
def live_api(rdb):
    """The API with the shipped models."""
    with serving(None) as base:
        yield base


@pytest.fixture
def live_api_tiny(rdb, identity_models):
    """The API with the tiny test models."""
    with serving(identity_models) as base:
        yield base
