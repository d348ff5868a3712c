"""`restore bench service`: jobs per second and end-to-end latency through the real service, and the
overhead beyond the model's own time.

It starts `restore serve` and one `restore worker` (concurrency 1) against a Redis database of its own,
sends photo-like images of two sizes, and times each job from the POST to the downloaded result. The
model's own time is the pipeline time the worker measured; the bare pipeline is also timed here, in
process, on the same image with the same thread count, for the ratio.
"""
from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import redis

from restore.io import read_image
from restore.pipeline import run
from restore.settings import Settings
from restore.tasks.base import Context

SIZES = {"small 256x256": (256, 256), "large 2048x1536": (2048, 1536)}


def photo_like(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((height // 16, width // 16, 3)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    noisy = np.clip(base + rng.normal(0, 25 / 255, base.shape), 0, 1)
    return cv2.imencode(".png", np.round(noisy * 255).astype(np.uint8))[1].tobytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict) -> subprocess.Popen:
    restore = str(Path(sys.executable).parent / "restore")
    return subprocess.Popen([restore, *args], env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _job(http: httpx.Client, data: bytes, poll_s: float) -> tuple[float, float]:
    """(end-to-end seconds, the worker's pipeline seconds) for one job, result downloaded."""
    t0 = time.perf_counter()
    r = http.post("/v1/jobs", files={"file": ("bench.png", data, "image/png")}, data={"task": "denoise"})
    r.raise_for_status()
    location = r.headers["location"]
    while (body := http.get(location).json())["status"] in ("queued", "running"):
        time.sleep(poll_s)
    if body["status"] != "succeeded":
        raise RuntimeError(f"bench job {body['status']}: {body['error']}")
    http.get(location + "/result").raise_for_status()
    return time.perf_counter() - t0, body["metrics"]["seconds"]


def run_service_bench(redis_url: str, jobs: int, threads: int, poll_s: float = 0.005, sizes: dict = SIZES) -> list[dict]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    port = _free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RESTORE_")},
           "RESTORE_REDIS_URL": redis_url, "RESTORE_THREADS": str(threads), "RESTORE_DEVICE": "cpu"}
    procs = [_start(["serve", "--port", str(port)], env), _start(["worker", "--concurrency", "1", "--loglevel", "WARNING"], env)]
    ctx = Context.create(Settings(_env_file=None, threads=threads, device="cpu"))
    rows = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as http:
            for _ in range(300):
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            else:
                raise RuntimeError("the service did not become ready")
            for label, (w, h) in sizes.items():
                count = jobs if w * h < 1e6 else max(3, jobs // 10)
                images = [photo_like(w, h, i) for i in range(count)]
                _job(http, images[0], poll_s)  # warm-up: model load and first-call costs
                bare = []
                for data in images:
                    picture = read_image(data)
                    t0 = time.perf_counter()
                    run("denoise", picture, {}, ctx)
                    bare.append(time.perf_counter() - t0)
                timed = [_job(http, data, poll_s) for data in images]
                e2e = [t for t, _ in timed]
                overhead = [t - model for t, model in timed]
                t0 = time.perf_counter()  # throughput: all at once, one worker
                ids = [http.post("/v1/jobs", files={"file": ("b.png", d, "image/png")}, data={"task": "denoise"}).json()["id"] for d in images]
                for job_id in ids:
                    while http.get(f"/v1/jobs/{job_id}").json()["status"] in ("queued", "running"):
                        time.sleep(poll_s * 4)
                rows.append({
                    "size": label, "jobs": count,
                    "bare_pipeline_ms": 1000 * statistics.median(bare),
                    "e2e_median_ms": 1000 * statistics.median(e2e),
                    "e2e_p90_ms": 1000 * sorted(e2e)[int(0.9 * (count - 1))],
                    "overhead_median_ms": 1000 * statistics.median(overhead),
                    "e2e_over_bare": statistics.median(e2e) / statistics.median(bare),
                    "jobs_per_s": count / (time.perf_counter() - t0),
                })
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(30)
        client.flushdb()
    return rows
