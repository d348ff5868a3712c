"""/v1/jobs: submit one image, poll it, fetch the result, cancel it."""
from __future__ import annotations

import re
from pathlib import PureWindowsPath
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, HTTPException, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from restore.api.deps import CeleryDep, GateDep, OwnerDep, SettingsDep, StoreDep, TaskDep
from restore.api.media import media_type, suffix
from restore.api.schemas import JobCreated, JobView, links
from restore.api.submission import admit, submit, upload_bytes
from restore.pipeline import options_from_json
from restore.workers.store import Job, JobStore

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what new_id makes; anything else is no job of ours

OPTIONS_HELP = ('JSON: the tasks\' options and the output format, e.g. {"strength": 0.5, "format": "png"}; for colorize '
                '{"samples": 4, "seed": 7, "hints": [{"x": 120, "y": 45, "color": "#c0392b"}]} (results: ?sample=0..3); for '
                'dewatermark {"ensemble": false} (one pass: half the time). GET /v1/tasks lists every option.')


def owned_job(store: JobStore, job_id: str, owner: str) -> Job:
    job = store.get(job_id) if ID.fullmatch(job_id) else None
    if job is None or job.owner != owner:  # another key's job is as unknown as a missing one
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.post("", status_code=202, response_model=JobCreated)
async def create_job(
    response: Response, store: StoreDep, celery: CeleryDep, settings: SettingsDep, gate: GateDep, owner: OwnerDep, sent: TaskDep,
    file: Annotated[UploadFile, File(description="the image")],
    task: Annotated[str, Form(description="denoise, dewatermark, colorize, or a chain such as dewatermark,denoise")] = "denoise",
    options: Annotated[str | None, Form(description=OPTIONS_HELP)] = None,
    mask: Annotated[UploadFile | None, File(description="optional, dewatermark: an image the photo's size, white where the watermark is")] = None,
    hints: Annotated[UploadFile | None, File(description="optional, colorize: an image the photo's size, painted with the known "
                                                         "colours, transparent elsewhere")] = None,
) -> JobCreated:
    limit = min(settings.max_bytes, store.max_blob)
    data = await run_in_threadpool(upload_bytes, file, limit, "image")
    guidance = {kind: await run_in_threadpool(upload_bytes, upload, limit, kind)
                for kind, upload in (("mask", mask), ("hints", hints)) if upload is not None}
    parsed = options_from_json(options)
    await run_in_threadpool(admit, store, settings, owner)
    # Decoding to check is CPU work: off the event loop.
    job = await run_in_threadpool(submit, store, celery, settings, gate, owner, data, file.filename or "", sent, parsed, "", guidance)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobCreated(id=job.id, status=job.status, links=links(job.id))


@router.get("/{job_id}", response_model=JobView)
def get_job(job_id: str, store: StoreDep, owner: OwnerDep) -> JobView:
    return JobView.of(owned_job(store, job_id, owner))


@router.get("/{job_id}/result", responses={200: {"content": {"image/*": {}}}, 409: {"description": "not ready"}})
def get_result(job_id: str, store: StoreDep, owner: OwnerDep, sample: Annotated[int, Query(ge=0, le=1000)] = 0) -> Response:
    job = owned_job(store, job_id, owner)
    if job.status != "succeeded":
        detail = f"job {job_id} is {job.status}" + (f": {job.error}" if job.error else "; poll /v1/jobs/" + job_id)
        raise HTTPException(409, detail)
    if sample >= job.results:
        raise HTTPException(404, f"job {job_id} has {job.results} result(s); sample {sample} does not exist")
    blob = store.result(job_id, sample)
    if blob is None:
        raise HTTPException(404, f"the result of job {job_id} has expired")
    store.downloaded(job_id)
    stem = (PureWindowsPath(job.input_name).stem or job_id) + (f"_{sample}" if sample else "")
    return Response(blob, media_type=media_type(blob), headers={"Content-Disposition": attachment(f"{stem}.{suffix(blob)}")})


def attachment(name: str) -> str:
    """A Content-Disposition for any file name: an ASCII fallback and the UTF-8 name (RFC 6266)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


@router.delete("/{job_id}", status_code=204)
def delete_job(job_id: str, store: StoreDep, owner: OwnerDep) -> Response:
    owned_job(store, job_id, owner)
    store.cancel(job_id)  # a worker running it sees the cancellation at its next progress report and stops
    return Response(status_code=204)
