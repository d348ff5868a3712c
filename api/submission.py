"""Turning an upload into a queued job: check everything first, so bad input never reaches a queue."""
from __future__ import annotations

import threading
from contextlib import contextmanager

from celery import Celery
from fastapi import UploadFile

from restore.errors import InputError, TooLarge
from restore.io import Limits, probe, read_image
from restore.models import model_for_task
from restore.pipeline import Plan, check, plan
from restore.workers.registry import serving
from restore.workers.settings import ServiceSettings
from restore.workers.store import Job, JobStore, new_id

RUN_JOB = "restore.run_job"
DECODE_WAIT_S = 30
MAX_NAME = 255  # characters of an upload's file name


class Busy(Exception):
    """The service is at one of its limits for this caller (jobs in flight, submissions per minute)."""

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after


class DecodeGate:
    """Bounds the memory spent decoding uploads to check them: a decode reserves its pixels' bytes and
    waits while others hold the budget. An image bigger than the whole budget is checked from its header
    only (the worker decodes it, and a corrupt one fails there with the decoder's message)."""

    def __init__(self, budget_bytes: int):
        self.budget, self.used = budget_bytes, 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int):
        """Yields True with the bytes reserved, or False (nothing reserved) when they cannot be had."""
        if nbytes > self.budget:
            yield False
            return
        with self._cond:
            got = self._cond.wait_for(lambda: self.used + nbytes <= self.budget, timeout=DECODE_WAIT_S)
            if got:
                self.used += nbytes
        try:
            yield got
        finally:
            if got:
                with self._cond:
                    self.used -= nbytes
                    self._cond.notify_all()


def upload_bytes(upload: UploadFile, limit: int, what: str) -> bytes:
    """An upload's bytes; one over the limit is refused from its size, without being read into memory."""
    name = upload.filename or what
    if len(name) > MAX_NAME:
        raise InputError(f"the {what}'s file name is {len(name):,} characters; the limit is {MAX_NAME}")
    if upload.size is not None and upload.size > limit:
        raise TooLarge(f"{name} is {upload.size / 2**20:.1f} MB; the limit is {limit / 2**20:.1f} MB")
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{name} is over the limit of {limit / 2**20:.1f} MB")
    return data


def check_request(data: bytes, name: str, task: str, options: dict, settings: ServiceSettings, gate: DecodeGate,
                  guidance: dict[str, bytes] | None = None) -> Plan:
    """The checked plan of a valid request; InputError (or TooLarge) otherwise. The image and its guidance
    are decoded here when the decode budget allows (one decode each), so a corrupt upload is refused
    before it is queued; otherwise their headers are checked."""
    guidance = guidance or {}
    request = plan(task, options, tuple(guidance))
    for task_name in request.tasks:
        model_for_task(task_name, settings.models_dir)  # a task this server has no model for is refused now
    if not data:
        raise InputError(f"{name or 'the upload'} is an empty file")
    limits = Limits(settings.max_bytes, settings.max_pixels)
    header = probe(data, limits)
    guides = {kind: probe(blob, limits) for kind, blob in guidance.items()}
    check(request, header.size, {k: h.size for k, h in guides.items()}, header.format)
    for blob, head in ((data, header), *((guidance[k], h) for k, h in guides.items())):
        with gate.reserve(2 * head.decoded_bytes) as decode:  # the decoder's buffer and the array made from it
            if decode:
                read_image(blob, limits)
    return request


def choose_queue(store: JobStore) -> str:
    """gpu while a GPU worker is up, else cpu (CPU workers move gpu's jobs to cpu if it dies: workers.rescue)."""
    return "gpu" if serving(store.redis, "gpu") else "cpu"


def admit(store: JobStore, settings: ServiceSettings, owner: str, count: int = 1) -> None:
    """Busy unless the caller may submit `count` more jobs now."""
    if store.in_flight(owner) + count > settings.max_in_flight:
        raise Busy(f"{settings.max_in_flight} jobs at most may be unfinished at once; wait for some to finish", 10)
    if store.count_submission(owner, count) > settings.max_per_minute:
        raise Busy(f"{settings.max_per_minute} submissions a minute at most; retry in a minute", 60)


def enqueue(store: JobStore, celery: Celery, job: Job, data: bytes, guidance: dict[str, bytes] | None = None) -> Job:
    store.create(job, data, guidance)
    try:
        celery.send_task(RUN_JOB, args=[job.id], queue=job.queue)
        store.redis.incr("restore:stats:submitted")
    except Exception:
        store.delete(job.id)  # never leave a job that no worker will ever see
        raise
    return job


def options_of(request: Plan, options: dict) -> tuple[dict, str]:
    """The options a job record keeps, and its output format ('' for the input's own)."""
    return {k: v for k, v in options.items() if k != "format"}, request.format or ""


def submit(store: JobStore, celery: Celery, settings: ServiceSettings, gate: DecodeGate, owner: str, data: bytes, name: str,
           task: str, options: dict, batch: str = "", guidance: dict[str, bytes] | None = None) -> Job:
    request = check_request(data, name, task, options, settings, gate, guidance)
    kept, fmt = options_of(request, options)
    job = Job(id=new_id(), task=",".join(request.tasks), owner=owner, options=kept, queue=choose_queue(store),
              input_name=name, output_format=fmt, batch=batch)
    return enqueue(store, celery, job, data, guidance)
