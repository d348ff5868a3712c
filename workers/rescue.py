"""Jobs stranded on the gpu queue go to cpu.

The API sends a job to `gpu` while a GPU worker is alive. If that worker dies (or is stopped), the jobs
waiting on `gpu` would wait there until a GPU worker came back. CPU workers check at each heartbeat:
when no live worker consumes `gpu`, one of them (a short Redis lock) moves the waiting messages to `cpu`
with Celery's own message migration, which publishes each on `cpu` before acking it on `gpu`: none is
lost, and one delivered twice is harmless (workers.tasks.execute). Jobs the dead worker had already
taken come back to `gpu` after the broker's visibility timeout and are moved at the next beat.
"""
from __future__ import annotations

import logging

import redis
from celery import Celery
from celery.contrib.migrate import move
from kombu import Exchange, Queue

from restore.workers.registry import serving

log = logging.getLogger(__name__)

LOCK = "restore:rescue:lock"
PER_BEAT = 200  # messages moved per heartbeat at most: a beat stays well inside the workers' 30 s TTL


def celery_queue(name: str) -> Queue:
    """The queue as Celery declares one named in send_task(queue=...): a direct exchange of its name."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def move_stranded_gpu_jobs(app: Celery, client: redis.Redis, owner: str) -> int:
    """Move what waits on `gpu` to `cpu` if no live worker consumes `gpu`; how many messages moved."""
    waiting = client.llen("gpu")
    if not waiting or serving(client, "gpu") or not client.set(LOCK, owner, nx=True, ex=60):
        return 0
    moved = 0

    def count(*_):
        nonlocal moved
        moved += 1

    cpu = celery_queue("cpu")
    try:
        # Its own connection, with socket timeouts: a Redis that stops answering must not hang the heartbeat.
        with app.connection_for_write(transport_options={"socket_timeout": 10, "socket_connect_timeout": 5}) as conn:
            move(lambda body, message: cpu, connection=conn, app=app, source=[celery_queue("gpu")],
                 limit=min(waiting, PER_BEAT), callback=count)
    finally:
        client.delete(LOCK)
    if moved:
        log.warning("no GPU worker is alive: moved %d job(s) from the gpu queue to cpu", moved)
    return moved
