"""/v1/batches: many files in one request; per-file errors instead of refusing the whole batch."""
from __future__ import annotations

import contextlib
import json
import tempfile
import zipfile
from pathlib import PureWindowsPath
from typing import Annotated

import redis
from fastapi import APIRouter, File, Form, HTTPException, Response, UploadFile
from fastapi.responses import StreamingResponse

from restore.api.deps import CeleryDep, GateDep, OwnerDep, SettingsDep, StoreDep, TaskDep
from restore.api.media import suffix
from restore.api.routes.jobs import OPTIONS_HELP
from restore.api.submission import admit, check_request, choose_queue, enqueue, options_of, upload_bytes
from restore.errors import InputError
from restore.pipeline import options_from_json, plan
from restore.workers.store import TERMINAL, Job, JobStore, new_id

router = APIRouter(prefix="/v1/batches", tags=["batches"])


def owned_batch(store: JobStore, batch_id: str, owner: str) -> dict:
    batch = store.get_batch(batch_id)
    if batch is None or batch["owner"] != owner:
        raise HTTPException(404, f"no batch {batch_id}")
    return batch


def batch_view(store: JobStore, batch: dict) -> dict:
    jobs = [store.get(job_id) for job_id in batch["jobs"]]
    entries = [
        {"id": job_id, "name": name, "status": job.status if job else "expired", "error": (job.error or None) if job else None}
        for job_id, name, job in zip(batch["jobs"], batch["names"], jobs)
    ]
    counts = {state: sum(e["status"] == state for e in entries) for state in ("queued", "running", *TERMINAL, "expired")}
    done = counts["queued"] == counts["running"] == 0
    return {"id": batch["id"], "task": batch["task"], "status": "done" if done else "running", "counts": counts, "jobs": entries,
            "links": {"self": f"/v1/batches/{batch['id']}", "archive": f"/v1/batches/{batch['id']}/archive"}}


ARCHIVE_IN_MEMORY = 64 * 2**20


def _by_stem(uploads: list[UploadFile], kind: str, photos: set[str]) -> dict[str, UploadFile]:
    """Guidance uploads by the name they are matched on (the file name without its suffix); one that
    matches no photo, or two with one name, would silently guide the wrong photo or none: refused."""
    found: dict[str, UploadFile] = {}
    for upload in uploads:
        stem = PureWindowsPath(upload.filename or "").stem
        if stem in found:
            raise InputError(f"two {kind} images are named {stem!r}; each photo takes one, matched by name without the suffix")
        if stem not in photos:
            raise InputError(f"the {kind} image {upload.filename!r} matches no photo of the batch (matched by name without the suffix)")
        found[stem] = upload
    return found


@router.post("", status_code=202)
def create_batch(
    response: Response, store: StoreDep, celery: CeleryDep, settings: SettingsDep, gate: GateDep, owner: OwnerDep, sent: TaskDep,
    files: Annotated[list[UploadFile], File(description="the images")],
    task: Annotated[str, Form()] = "denoise",
    options: Annotated[str | None, Form(description=OPTIONS_HELP)] = None,
    masks: Annotated[list[UploadFile] | None, File(description="dewatermark: masks, each named as its image (any suffix)")] = None,
    hints: Annotated[list[UploadFile] | None, File(description="colorize: hint images, each named as its image (any suffix)")] = None,
) -> dict:
    """Plain def: FastAPI runs it in its threadpool, so decoding and Redis calls never block the event loop.
    Each file is checked on its own: a refused file is that file's error. A batch with no acceptable file
    is refused whole (400), and nothing is stored for it. Each file (and its guidance) is read, checked and
    queued before the next is read, so a request holds one file's bytes in memory, not the whole batch's."""
    if len(files) > settings.max_batch_files:
        raise InputError(f"{len(files)} files; a batch takes at most {settings.max_batch_files}")
    parsed = options_from_json(options)
    request = plan(sent, parsed, tuple(k for k, given in (("mask", masks), ("hints", hints)) if given))
    admit(store, settings, owner, len(files))
    limit = min(settings.max_bytes, store.max_blob)
    photos = {PureWindowsPath(u.filename or "").stem for u in files}
    guides = {kind: _by_stem(uploads, kind, photos) for kind, uploads in (("mask", masks), ("hints", hints)) if uploads}
    kept, fmt = options_of(request, parsed)
    batch_id, job_ids, names, refused = new_id(), [], [], []
    try:
        for upload in files:
            name = upload.filename or f"file{len(job_ids)}"
            job = Job(id=new_id(), task=",".join(request.tasks), owner=owner, options=kept, input_name=name, output_format=fmt, batch=batch_id)
            try:
                data = upload_bytes(upload, limit, "image")
                stem = PureWindowsPath(name).stem
                given = {kind: upload_bytes(found[stem], limit, kind) for kind, found in guides.items() if stem in found}
                check_request(data, name, sent, parsed, settings, gate, given)
            except InputError as e:  # this file is refused; the others go on
                job.status, job.error = "failed", str(e)
                refused.append(job)
            else:
                job.queue = choose_queue(store)
                enqueue(store, celery, job, data, given)
            job_ids.append(job.id)
            names.append(name)
        if len(refused) == len(files):  # nothing was queued, so nothing is stored
            raise InputError("no file in the batch can be restored: " + "; ".join(f"{j.input_name}: {j.error}" for j in refused[:20]))
        for job in refused:
            store.create(job, None)
        store.create_batch(batch_id, owner, ",".join(request.tasks), job_ids, names)
        view = batch_view(store, store.get_batch(batch_id))
    except Exception:
        # The client gets an error and no batch id, so the jobs queued so far would run where nobody can
        # see them: delete them (their messages then find nothing to do). If Redis is gone altogether,
        # this fails too and the records expire with their TTL.
        with contextlib.suppress(redis.RedisError):
            store.delete(*job_ids)
            store.delete_batch(batch_id)
        raise
    response.headers["Location"] = f"/v1/batches/{batch_id}"
    return view


@router.get("/{batch_id}")
def get_batch(batch_id: str, store: StoreDep, owner: OwnerDep) -> dict:
    return batch_view(store, owned_batch(store, batch_id, owner))


@router.get("/{batch_id}/archive", responses={200: {"content": {"application/zip": {}}}, 409: {"description": "not done"}})
def get_archive(batch_id: str, store: StoreDep, owner: OwnerDep) -> Response:
    """A zip of every result (samples as name_1, name_2, ...) and summary.json; 409 while jobs still run."""
    batch = owned_batch(store, batch_id, owner)
    view = batch_view(store, batch)
    if view["status"] != "done":
        raise HTTPException(409, f"batch {batch_id} is still running: {view['counts']}")
    # Built in a file that stays in memory only while small: a batch's results can be gigabytes.
    spool = tempfile.SpooledTemporaryFile(max_size=ARCHIVE_IN_MEMORY)
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_STORED) as zf:  # images are compressed already
        used: set[str] = set()
        for entry in view["jobs"]:
            job = store.get(entry["id"]) if entry["status"] == "succeeded" else None
            for i in range(job.results if job else 0):
                blob = store.result(job.id, i)
                if blob is None:
                    continue
                store.downloaded(job.id)
                # PureWindowsPath splits on / and \\ alike: no entry name can climb out of the archive.
                stem = PureWindowsPath(entry["name"]).stem + (f"_{i}" if i else "")
                name = _unique(f"{stem}.{suffix(blob)}", used)
                entry.setdefault("outputs", []).append(name)
                zf.writestr(name, blob)
        zf.writestr("summary.json", json.dumps(view, indent=2))
    size = spool.tell()
    spool.seek(0)

    def chunks():
        with spool:
            while chunk := spool.read(2**20):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="batch-{batch_id}.zip"', "Content-Length": str(size)})


def _unique(name: str, used: set[str]) -> str:
    """Two uploads may share a name (a/x.png and b/x.png): the second becomes x-2.png."""
    stem, dot, ext = name.rpartition(".")
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}{dot}{ext}"
    used.add(candidate)
    return candidate
