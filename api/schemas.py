"""Response bodies (the OpenAPI schema comes from these)."""
from __future__ import annotations

from pydantic import BaseModel

from restore.workers.store import Job


class Links(BaseModel):
    self: str
    result: str


class JobCreated(BaseModel):
    id: str
    status: str
    links: Links


class Progress(BaseModel):
    tiles_done: int
    tiles_total: int
    fraction: float


class Timings(BaseModel):
    created: float
    started: float | None
    finished: float | None
    queued_seconds: float | None
    run_seconds: float | None


class JobView(BaseModel):
    id: str
    status: str
    task: str
    options: dict
    progress: Progress
    timings: Timings
    error: str | None
    metrics: dict
    device: str | None
    providers: list[str]
    attempts: int
    results: int
    batch: str | None
    links: Links

    @classmethod
    def of(cls, job: Job) -> JobView:
        started, finished = job.started or None, job.finished or None
        return cls(
            id=job.id, status=job.status, task=job.task, options=job.options,
            progress=Progress(tiles_done=job.tiles_done, tiles_total=job.tiles_total,
                              fraction=1.0 if job.status == "succeeded" else job.tiles_done / job.tiles_total if job.tiles_total else 0.0),
            timings=Timings(created=job.created, started=started, finished=finished,
                            queued_seconds=round(started - job.created, 3) if started else None,
                            run_seconds=round(finished - started, 3) if started and finished else None),
            error=job.error or None, metrics=job.metrics, device=job.device or None, providers=job.providers,
            attempts=job.attempts, results=job.results, batch=job.batch or None, links=links(job.id),
        )


def links(job_id: str) -> Links:
    return Links(self=f"/v1/jobs/{job_id}", result=f"/v1/jobs/{job_id}/result")
