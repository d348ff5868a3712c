"""Turning an upload into a queued job: validate everything first, so bad input never reaches a queue."""
from __future__ import annotations

from celery import Celery

from restore.errors import InputError
from restore.io import FORMATS, Limits, output_format, read_image
from restore.models import model_for_task
from restore.pipeline import check_mask, validate
from workers.registry import serving
from workers.settings import ServiceSettings
from workers.store import Job, JobStore, new_id

RUN_JOB = "restore.run_job"


def split_format(options: dict) -> tuple[dict, str]:
    """The task options and the output format ('' for the input's own) a request's options carry."""
    options = dict(options)
    fmt = str(options.pop("format", "") or "").lower()
    if fmt and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose from {', '.join(sorted(FORMATS))}")
    return options, fmt


def check_request(data: bytes, name: str, task: str, options: dict, settings: ServiceSettings,
                  mask: bytes | None = None) -> tuple[str, dict, str]:
    """(task chain, task options, output format) for a valid request; InputError (or TooLarge) otherwise.
    The image (and mask) are decoded here once, so a corrupt upload is refused before it is queued."""
    options, fmt = split_format(options)
    names, _ = validate(task, options)
    for task_name in names:
        model_for_task(task_name, settings.models_dir)  # a task this server has no model for is refused now
    if not data:
        raise InputError(f"{name or 'the upload'} is an empty file")
    limits = Limits(settings.max_bytes, settings.max_pixels)
    picture = read_image(data, limits)
    output_format(picture, None, fmt)  # a format that cannot hold the image is refused now, not after the work
    if mask is not None:
        check_mask(names, read_image(mask, limits), picture)
    return ",".join(names), options, fmt


def choose_queue(store: JobStore) -> str:
    """gpu while a GPU worker is up, else cpu (CPU workers move gpu's jobs to cpu if it dies: workers.rescue)."""
    return "gpu" if serving(store.redis, "gpu") else "cpu"


def enqueue(store: JobStore, celery: Celery, job: Job, data: bytes, mask: bytes | None = None) -> Job:
    store.create(job, data, mask)
    try:
        celery.send_task(RUN_JOB, args=[job.id], queue=job.queue)
        store.redis.incr("restore:stats:submitted")
    except Exception:
        store.delete(job.id)  # never leave a job that no worker will ever see
        raise
    return job


def submit(store: JobStore, celery: Celery, settings: ServiceSettings, owner: str, data: bytes, name: str,
           task: str, options: dict, batch: str = "", mask: bytes | None = None) -> Job:
    chain, task_options, fmt = check_request(data, name, task, options, settings, mask)
    job = Job(id=new_id(), task=chain, owner=owner, options=task_options, queue=choose_queue(store),
              input_name=name, output_format=fmt, batch=batch)
    return enqueue(store, celery, job, data, mask)
