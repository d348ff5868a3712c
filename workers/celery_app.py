"""The Celery app: Redis broker, late acks, bounded re-delivery, time limits.

Results do not go through Celery: the task writes them to the job store, so the app needs no result
backend and messages carry only job ids.
"""
from __future__ import annotations

from celery import Celery

from restore.workers.settings import ServiceSettings

QUEUES = ("cpu", "gpu")


def create_celery(settings: ServiceSettings) -> Celery:
    app = Celery("restore", broker=settings.redis_url, include=["restore.workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue="cpu",
        # Ack after the job ran, and re-queue it when the pool child running it dies: a worker killed
        # mid-job loses nothing. The job store counts deliveries, so a job that kills its worker every
        # time is failed after max_deliveries instead of looping.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.soft_time_limit_s,
        task_time_limit=settings.hard_time_limit_s,
        worker_max_memory_per_child=settings.max_memory_per_child_kb or None,
        # A pool child loads (and checksums) every model before it reports up; Celery's default 4 s
        # for that would kill and respawn it in a loop on a slow disk or a CUDA start.
        worker_proc_alive_timeout=120,
        # When the whole worker dies, Redis hands its unacked jobs out again only after this timeout:
        # just above the hard time limit, so no job that is still running is ever handed out twice.
        # Live workers look for such jobs every 5 s (kombu's default scan is every 100 s).
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_interval": 5,
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app
