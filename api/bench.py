"""`restore bench service`: jobs per second and end-to-end latency through the real service, and the
overhead beyond the model's own time.

It starts a redis-server of its own, `restore serve` and one `restore worker` (concurrency 1) on
127.0.0.1, sends photo-like images of two sizes, and times each job from the POST to the downloaded
result, and each POST alone. The model's own time is the pipeline time the worker measured; the bare
pipeline is also timed here, in process, on the same image with the same thread count. The API's and
the worker's resident memory is read before and after.
"""
from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

from restore.api.localredis import LocalRedis, free_port
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


def _start(args: list[str], env: dict) -> subprocess.Popen:
    restore = str(Path(sys.executable).parent / "restore")
    return subprocess.Popen([restore, *args], env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _job(http: httpx.Client, data: bytes, poll_s: float) -> tuple[float, float, float]:
    """(end-to-end seconds, submit seconds, the worker's pipeline seconds) for one job, result downloaded."""
    t0 = time.perf_counter()
    r = http.post("/v1/jobs", files={"file": ("bench.png", data, "image/png")}, data={"task": "denoise"})
    r.raise_for_status()
    submitted = time.perf_counter() - t0
    location = r.headers["location"]
    while (body := http.get(location).json())["status"] in ("queued", "running"):
        time.sleep(poll_s)
    if body["status"] != "succeeded":
        raise RuntimeError(f"bench job {body['status']}: {body['error']}")
    http.get(location + "/result").raise_for_status()
    return time.perf_counter() - t0, submitted, body["metrics"]["seconds"]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (a worker's pool), in MB, from /proc."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        kids = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_service_bench(jobs: int, threads: int, poll_s: float = 0.005, sizes: dict = SIZES) -> tuple[list[dict], dict]:
    """Rows per image size, and the API's and the worker's memory (MB) before and after."""
    with LocalRedis() as store:
        return _bench(store.url(), jobs, threads, poll_s, sizes)


def _bench(redis_url: str, jobs: int, threads: int, poll_s: float, sizes: dict) -> tuple[list[dict], dict]:
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RESTORE_")},
           "RESTORE_REDIS_URL": redis_url, "RESTORE_THREADS": str(threads), "RESTORE_DEVICE": "cpu"}
    api, worker = _start(["serve", "--port", str(port)], env), _start(["worker", "--concurrency", "1", "--loglevel", "WARNING"], env)
    ctx = Context.create(Settings(_env_file=None, threads=threads, device="cpu"))
    rows, memory = [], {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the service did not become ready in 60 s")
                time.sleep(0.1)
            memory = {"api": [rss_mb(api.pid)], "worker": [rss_mb(worker.pid)]}
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
                e2e, submit = [t for t, _, _ in timed], [s for _, s, _ in timed]
                overhead = [t - model for t, _, model in timed]
                t0 = time.perf_counter()  # throughput: all at once, one worker
                ids = [http.post("/v1/jobs", files={"file": ("b.png", d, "image/png")}, data={"task": "denoise"}).json()["id"] for d in images]
                for job_id in ids:
                    while http.get(f"/v1/jobs/{job_id}").json()["status"] in ("queued", "running"):
                        time.sleep(poll_s * 4)
                rows.append({
                    "size": label, "jobs": count,
                    "bare_pipeline_ms": 1000 * statistics.median(bare),
                    "submit_p50_ms": 1000 * _percentile(submit, 0.5), "submit_p99_ms": 1000 * _percentile(submit, 0.99),
                    "e2e_p50_ms": 1000 * _percentile(e2e, 0.5), "e2e_p99_ms": 1000 * _percentile(e2e, 0.99),
                    "overhead_p50_ms": 1000 * _percentile(overhead, 0.5),
                    "jobs_per_s": count / (time.perf_counter() - t0),
                })
            memory["api"].append(rss_mb(api.pid))
            memory["worker"].append(rss_mb(worker.pid))
    finally:
        for p in (api, worker):
            os.killpg(p.pid, signal.SIGTERM)
        for p in (api, worker):
            p.wait(30)
    return rows, {k: tuple(v) for k, v in memory.items()}
