"""The job task: a thin wrapper around restore.pipeline.run, idempotent and safe to deliver twice."""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace

import redis
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_ready, worker_shutdown

from restore.engine import device_of, providers_for
from restore.errors import RestoreError
from restore.io import Limits, encode_image, read_image
from restore.pipeline import parse_tasks, run
from restore.tasks.base import Context
from workers.registry import start_heartbeat, worker_name
from workers.rescue import move_stranded_gpu_jobs
from workers.settings import ServiceSettings
from workers.store import TERMINAL, JobStore
from workers.worker import app, settings

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5

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
        _store = JobStore.from_url(settings.redis_url, settings.job_ttl_s, settings.max_blob_bytes)
    return _store


class Canceled(Exception):
    """The job was deleted while it ran."""


def progress_writer(jobs: JobStore, job_id: str):
    """Tile progress to the job record, at most every PROGRESS_EVERY_S; raises Canceled once the job is gone."""
    last = 0.0

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_EVERY_S and done < total:
            return
        last = now
        if not jobs.update(job_id, tiles_done=done, tiles_total=total):
            raise Canceled(job_id)

    return report


def execute(jobs: JobStore, job_id: str, ctx: Context, service: ServiceSettings, retries: int = 0) -> str:
    """Run one job to a terminal state and return that state. A duplicate delivery of a finished, deleted
    or expired job does nothing, so running it twice is harmless. Every error but a lost Redis connection
    (retried by Celery; `retries` is how many times so far) ends the job as failed: no job is left
    queued or running."""
    job = jobs.get(job_id)
    if job is None:
        return "gone"
    if job.status in TERMINAL:
        return job.status
    attempt = jobs.count_attempt(job_id)
    if attempt is None:
        return "gone"
    if attempt - retries > service.max_deliveries:  # Celery's own retries are not deaths of a worker
        jobs.update(job_id, status="failed", finished=time.time(),
                    error=f"gave up after {service.max_deliveries} attempts: the worker running it died each time")
        return "failed"
    started = time.time()
    try:
        providers = providers_for(service.device)
        if not jobs.update(job_id, status="running", started=started, device=device_of(providers), providers=providers, error=""):
            return "canceled"
        data = jobs.input(job_id)
        if data is None:
            raise RestoreError("the upload expired before the job ran")
        limits = Limits(service.max_bytes, service.max_pixels)
        picture = read_image(data, limits)
        mask = jobs.mask(job_id)
        result = run(parse_tasks(job.task), picture, job.options, replace(ctx, progress=progress_writer(jobs, job_id)),
                     read_image(mask, limits) if mask else None)
        blobs = [encode_image(p, job.output_format or None) for p in result.pictures]
        jobs.put_results(job_id, blobs)
        state, extra = "succeeded", {"metrics": result.metrics, "results": len(blobs)}
    except Canceled:
        return "canceled"
    except (SoftTimeLimitExceeded, RestoreError) as e:
        # The decoder wraps whatever stops it: the time limit firing mid-decode is not a corrupt file.
        late = isinstance(e, SoftTimeLimitExceeded) or isinstance(e.__cause__, SoftTimeLimitExceeded)
        state, extra = "failed", {"error": f"the job ran past its time limit of {service.soft_time_limit_s} s" if late else str(e)}
    except (redis.ConnectionError, redis.TimeoutError):
        raise  # transient: Celery retries the job
    except Exception as e:  # a bug or a library failure: say so in the job, keep the traceback in the log
        log.exception("job %s failed", job_id)
        state, extra = "failed", {"error": f"internal error: {type(e).__name__}: {e}"}
    finished = time.time()
    if not jobs.update(job_id, status=state, finished=finished, **extra):
        jobs.drop_results(job_id)  # canceled or deleted while it ran: leave nothing behind
        return "canceled"
    jobs.keep(job_id)  # the record lives as long as its results: a full TTL from now
    with jobs.redis.pipeline() as pipe:
        pipe.hincrby("restore:stats", state, 1)
        pipe.hincrbyfloat("restore:stats:seconds", "sum", finished - started)
        pipe.hincrby("restore:stats:seconds", "count", 1)
        pipe.execute()
    return state


REDIS_RETRIES = 5


@app.task(name="restore.run_job", bind=True, max_retries=REDIS_RETRIES)
def run_job(self, job_id: str) -> str:
    try:
        return execute(store(), job_id, context(), settings, self.request.retries)
    except (redis.ConnectionError, redis.TimeoutError) as e:
        if self.request.retries >= REDIS_RETRIES:
            give_up(store(), job_id, f"Redis was unreachable through {REDIS_RETRIES} retries: {e}")
            raise
        raise self.retry(exc=e, countdown=2 ** self.request.retries)


def give_up(jobs: JobStore, job_id: str, error: str) -> None:
    """Fail a job whose retries ran out, if Redis answers again; else its record expires with its TTL."""
    try:
        jobs.update(job_id, status="failed", finished=time.time(), error=error)
    except redis.RedisError:
        log.error("job %s: %s; Redis still unreachable, the record is left to expire", job_id, error)


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
    # CPU workers take over what waits on the gpu queue once no GPU worker is alive.
    owner = worker_name(os.getpid())
    rescue = (lambda: move_stranded_gpu_jobs(sender.app, store().redis, owner)) if sender and "cpu" in queues else None
    start_heartbeat(store().redis, info, _stop, rescue)


@worker_shutdown.connect
def _retire(**_):
    _stop.set()
