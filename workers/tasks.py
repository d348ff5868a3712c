"""The job task: a thin wrapper around restore.pipeline.process, idempotent and safe to deliver twice.

A run holds a lease on its job, renewed while it works. A run whose lease expires and stays expired for a
further lease (its worker died) is put back in the queue by a live worker's sweep (workers.sweep),
and a run that finds its job re-queued or canceled stops and writes nothing. Redis going away mid-job
is waited out: the run keeps working and writes its result when Redis answers again.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import redis
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_ready, worker_shutdown

from restore.engine import device_of, providers_for
from restore.errors import RestoreError
from restore.pipeline import plan, process
from restore.tasks.base import Context
from restore.workers.registry import start_heartbeat, worker_name
from restore.workers.rescue import move_stranded_gpu_jobs
from restore.workers.settings import ServiceSettings
from restore.workers.store import JobStore, new_id
from restore.workers.sweep import sweep_expired_leases
from restore.workers.worker import app, settings

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5
RUN_JOB = "restore.run_job"
T = TypeVar("T")

_context: Context | None = None
_store: JobStore | None = None


def context() -> Context:
    """One Context (and so one ONNX Runtime session per model) per worker process, built on first use:
    ORT sessions are not fork-safe, so the parent never builds one."""
    global _context
    if _context is None:
        _context = Context.create(settings)
    return _context


def store() -> JobStore:
    global _store
    if _store is None:
        _store = JobStore.from_url(settings.redis_url, settings.job_ttl_s, settings.max_blob_bytes, settings.downloaded_ttl_s)
    return _store


class Canceled(Exception):
    """The job was canceled, deleted or handed to another run while this one worked."""


def through_outage(action: Callable[[], T], wait_s: float, what: str) -> T:
    """action(), retried while Redis is unreachable, for up to wait_s seconds (then its error is raised)."""
    deadline, delay = time.monotonic() + wait_s, 0.2
    while True:
        try:
            return action()
        except (redis.ConnectionError, redis.TimeoutError) as e:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: Redis unreachable (%s); retrying in %.1f s", what, e, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class Lease:
    """Renews a run's lease every lease_s / 4 from a thread while the run works; Redis errors are
    skipped (the next renewal tries again), and a job found to be another run's stops the renewals."""

    def __init__(self, jobs: JobStore, job_id: str, run: str, lease_s: float):
        self.jobs, self.job_id, self.run, self.lease_s = jobs, job_id, run, lease_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{job_id[:8]}", daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                if not self.jobs.renew(self.job_id, self.run, self.lease_s):
                    self.lost.set()
                    return
            except redis.RedisError:
                pass

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def progress_writer(jobs: JobStore, job_id: str, run: str, lease: Lease):
    """Tile progress to the job record, at most every PROGRESS_EVERY_S; raises Canceled once the job is no
    longer this run's. Progress lost to a Redis outage is skipped: the work goes on."""
    last = 0.0

    def report(done: int, total: int) -> None:
        nonlocal last
        if lease.lost.is_set():
            raise Canceled(job_id)
        now = time.monotonic()
        if now - last < PROGRESS_EVERY_S and done < total:
            return
        last = now
        try:
            if not jobs.update(job_id, run, tiles_done=done, tiles_total=total):
                raise Canceled(job_id)
        except (redis.ConnectionError, redis.TimeoutError):
            pass

    return report


def execute(jobs: JobStore, job_id: str, ctx: Context, service: ServiceSettings) -> str:
    """Run one job to a final state and return that state (or why it did not run: 'gone', 'leased', or
    the final state it already had). A duplicate delivery does nothing. Every error but Redis staying
    away longer than service.redis_wait_s ends the job as failed: no job is left queued or running."""
    run = new_id()
    wait = service.redis_wait_s
    started = through_outage(lambda: jobs.start(job_id, run, service.lease_s), wait, f"job {job_id}")
    if isinstance(started, str):
        return started
    if started > service.max_deliveries:
        error = f"gave up after {service.max_deliveries} attempts: the worker running it stopped each time"
        jobs.finish(job_id, run, status="failed", finished=time.time(), error=error)
        return "failed"
    began = time.time()
    with Lease(jobs, job_id, run, service.lease_s) as lease:
        try:
            job = jobs.get(job_id)
            providers = providers_for(service.device)
            jobs.update(job_id, run, device=device_of(providers), providers=providers)
            data = jobs.input(job_id)
            if data is None:
                raise RestoreError("the upload expired before the job ran")
            guidance = jobs.guidance(job_id, job.guidance)
            missing = [kind for kind, blob in guidance.items() if blob is None]
            if missing:
                raise RestoreError(f"the {missing[0]} expired before the job ran")
            request = plan(job.task, {**job.options, "format": job.output_format or None}, tuple(guidance))
            out = process(data, request, replace(ctx, progress=progress_writer(jobs, job_id, run, lease)), guidance)
            if lease.lost.is_set():
                raise Canceled(job_id)
            through_outage(lambda: jobs.put_results(job_id, out.blobs), wait, f"job {job_id}")
            state, extra = "succeeded", {"metrics": out.metrics, "results": len(out.blobs)}
        except Canceled:
            return "canceled"
        except (SoftTimeLimitExceeded, RestoreError) as e:
            # The decoder wraps whatever stops it: the time limit firing mid-decode is not a corrupt file.
            late = isinstance(e, SoftTimeLimitExceeded) or isinstance(e.__cause__, SoftTimeLimitExceeded)
            state, extra = "failed", {"error": f"the job ran past its time limit of {service.soft_time_limit_s} s" if late else str(e)}
        except (redis.ConnectionError, redis.TimeoutError):
            raise  # Redis stayed away: the lease runs out and a live worker's sweep queues the job again
        except Exception as e:  # a bug or a library failure: say so in the job, keep the traceback in the log
            log.exception("job %s failed", job_id)
            state, extra = "failed", {"error": f"internal error: {type(e).__name__}: {e}"}
    finished = time.time()
    if not through_outage(lambda: jobs.finish(job_id, run, status=state, finished=finished, **extra), wait, f"job {job_id}"):
        jobs.drop_results(job_id)  # canceled, deleted or re-run meanwhile: leave nothing of this run behind
        return "canceled"
    with jobs.redis.pipeline() as pipe:
        pipe.hincrby("restore:stats", state, 1)
        pipe.hincrbyfloat("restore:stats:seconds", "sum", finished - began)
        pipe.hincrby("restore:stats:seconds", "count", 1)
        pipe.execute()
    return state


@app.task(name=RUN_JOB)
def run_job(job_id: str) -> str:
    return execute(store(), job_id, context(), settings)


@worker_process_init.connect
def _warm_up(**_):
    """Load every shipped model once per pool child, so the first job pays no load time."""
    from restore.tasks import TASKS

    for name in TASKS:
        try:
            context().session(name)
        except RestoreError as e:
            log.error("cannot load the model for %s: %s", name, e)


_stop = threading.Event()


@worker_ready.connect
def _announce(sender=None, **_):
    queues = sorted(q.name for q in sender.app.amqp.queues.consume_from.values()) if sender else []
    providers = providers_for(settings.device)
    info = {"pid": os.getpid(), "queues": queues, "providers": providers, "device": device_of(providers),
            "concurrency": getattr(getattr(sender, "controller", None), "concurrency", None)}
    owner = worker_name(os.getpid())

    def chores():
        # CPU workers take over what waits on the gpu queue once no GPU worker is alive; every worker
        # puts back in the queue the jobs whose runs stopped renewing their leases.
        if sender and "cpu" in queues:
            move_stranded_gpu_jobs(sender.app, store().redis, owner)
        sweep_expired_leases(store(), sender.app if sender else app, settings.max_deliveries, owner, grace_s=settings.lease_s)

    start_heartbeat(store().redis, info, _stop, chores)


@worker_shutdown.connect
def _retire(**_):
    _stop.set()
