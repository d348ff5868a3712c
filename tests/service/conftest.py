"""The service against a real redis-server of the suite's own (a free port, a temporary folder; started
once for the session and flushed per test) and real Celery worker processes started with the
`restore worker` command. Nothing here touches any other Redis on the machine."""
from __future__ import annotations

import atexit
import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image

from restore.api.localredis import LocalRedis, free_port
from restore.api.main import create_app
from restore.workers.registry import live_workers
from restore.workers.settings import ServiceSettings

# One server for the whole session. pytest may import this file under two names (as the tests' conftest
# and as tests.service.conftest); the environment carries the first one's address to the second.
REDIS_URL = os.environ.get("RESTORE_TESTS_REDIS_URL")
if REDIS_URL is None and shutil.which("redis-server"):
    _server = LocalRedis().start()
    atexit.register(_server.close)
    REDIS_URL = os.environ["RESTORE_TESTS_REDIS_URL"] = _server.url(0)
RESTORE = str(Path(sys.executable).parent / "restore")
__all__ = ["free_port"]


@pytest.fixture
def rdb():
    if REDIS_URL is None:
        pytest.skip("the service tests need the redis-server binary (Debian: redis-server)")
    client = redis.Redis.from_url(REDIS_URL)
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
        # The log goes to a file: a pipe nobody reads would stop a worker that logs a lot (a Redis outage).
        log = tempfile.NamedTemporaryFile(prefix="restore-worker-", suffix=".log", delete=False)
        proc = subprocess.Popen([RESTORE, "worker", "--queues", "cpu", "--concurrency", str(concurrency), "--loglevel", "WARNING"],
                                env=service_env(models_dir, **env), start_new_session=True, stdout=subprocess.DEVNULL, stderr=log)
        proc.log = Path(log.name)
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while wait and len(live_workers(self.rdb)) <= before:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited: {proc.log.read_text()[-3000:]}")
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


def wait_for(client, job_id: str, states=("succeeded", "failed", "canceled"), timeout: float = 60, headers=None,
             until=lambda body: True) -> dict:
    """Poll the job until it is in one of `states` and `until(body)` holds; TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if body.get("status") in states and until(body):
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {body.get('status')} after {timeout} s: {body}")
        time.sleep(0.1)


@contextlib.contextmanager
def serving(models_dir: Path | None, **env):
    """`restore serve` on a free port with these models (None: the shipped ones); yields its base URL and
    its process."""
    import httpx

    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="restore-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen([RESTORE, "serve", "--port", str(port)], env=service_env(models_dir, **env), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/healthz")
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(Path(log.name).read_text()[-3000:])
                time.sleep(0.1)
        yield base, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


@pytest.fixture
def live_api(rdb):
    """The API with the shipped models."""
    with serving(None) as (base, _):
        yield base


@pytest.fixture
def live_api_tiny(rdb, identity_models):
    """The API with the tiny test models."""
    with serving(identity_models) as (base, _):
        yield base
