"""Jobs stranded on the gpu queue go to cpu.

The API sends a job to `gpu` while a GPU worker is alive. If that worker dies (or is stopped) the jobs
it had not taken, and those Redis hands back from it after the visibility timeout, would wait on `gpu`
until a GPU worker came back. CPU workers check at each heartbeat: when no live worker consumes `gpu`,
they move its messages to `cpu`, with Celery's own message migration (each message is acked on `gpu`
only once it is published on `cpu`, so none is lost; a job delivered twice is harmless, see
workers.tasks.execute).
"""
from __future__ import annotations

import logging

import redis
from celery import Celery
from celery.contrib.migrate import move

from workers.registry import serving

log = logging.getLogger(__name__)


def move_stranded_gpu_jobs(app: Celery, client: redis.Redis) -> int:
    """Move what waits on `gpu` to `cpu` if no live worker consumes `gpu`; how many messages moved."""
    waiting = client.llen("gpu")
    if not waiting or serving(client, "gpu"):
        return 0
    cpu = app.amqp.queues["cpu"]
    state = move(lambda body, message: cpu, app=app, source=["gpu"], limit=waiting)
    if state.filtered:
        log.warning("no GPU worker is alive: moved %d job(s) from the gpu queue to cpu", state.filtered)
    return state.filtered
