"""Jobs whose run stopped renewing its lease go back to the queue (or fail, after max_deliveries runs).

A run renews its job's lease every quarter of the lease (workers.tasks.Lease). A lease that has run out
means the run's worker died, or was cut off from Redis for a whole lease. A live worker's sweep notes the
lease, and if it is still out a further lease later (a run that was only cut off has renewed it by then),
no live worker will finish that run: the sweep, at a heartbeat, queues the job again with a new message. The old
run, if it is still alive somewhere, finds the job no longer its own at its next write and stops.
A short Redis lock keeps two workers from sweeping at once.
"""
from __future__ import annotations

import logging
import time

from celery import Celery

from restore.workers.store import JobStore

log = logging.getLogger(__name__)
LOCK = "restore:sweep:lock"
RUN_JOB = "restore.run_job"


def sweep_expired_leases(store: JobStore, app: Celery, max_deliveries: int, owner: str, grace_s: float = 0.0) -> int:
    """Queue again (or fail) every running job whose lease expired and stayed expired for grace_s (a
    worker passes its lease: time for a run that lost Redis to renew once Redis is back); how many were handled."""
    expired = store.expired_leases(grace_s)
    if not expired or not store.redis.set(LOCK, owner, nx=True, ex=30):
        return 0
    handled = 0
    try:
        for job_id in expired:
            job = store.get(job_id)
            if job is None or job.status != "running":
                store.release(job_id)
                continue
            if job.attempts >= max_deliveries:
                error = f"gave up after {max_deliveries} attempts: the worker running it stopped each time"
                store.finish(job_id, job.run, status="failed", finished=time.time(), error=error)
            elif store.requeue(job_id, job.run):
                app.send_task(RUN_JOB, args=[job_id], queue=job.queue)
                log.warning("job %s: its run's lease expired (attempt %d); queued again", job_id, job.attempts)
            handled += 1
    finally:
        store.redis.delete(LOCK)
    return handled
