"""/v1/tasks, /v1/models, /healthz, /readyz, /metrics."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from restore.api.deps import SettingsDep, StoreDep
from restore.guidance import KINDS
from restore.models import load_manifest
from restore.tasks import TASKS
from restore.workers.registry import live_workers

router = APIRouter(tags=["system"])


@router.get("/v1/tasks")
def tasks() -> list[dict]:
    """Every task: what it does, its options (a JSON schema), the guidance images it takes, and an example.
    The web page builds its forms from this, so page and API cannot drift apart."""
    return [
        {"name": t.name, "summary": t.summary, "options": t.options.model_json_schema(),
         "guidance": [{"name": g, "help": KINDS[g].help} for g in t.guidance], "example": t.example}
        for t in TASKS.values()
    ]


@router.get("/v1/models")
def models(settings: SettingsDep) -> list[dict]:
    return [
        {"name": m.name, "version": m.version, "task": m.task, "sha256": m.sha256, "input": m.input,
         "output": m.output, "training": m.training, "metrics": m.metrics}
        for m in load_manifest(settings.models_dir).values()
    ]


@router.get("/healthz")
def healthz() -> dict:
    """The process answers. Readiness (Redis, workers) is /readyz."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(store: StoreDep) -> JSONResponse:
    store.redis.ping()  # unreachable Redis -> 503 through the app's handler
    workers = live_workers(store.redis)
    body = {"redis": "ok", "workers": workers}
    if not workers:
        body["detail"] = "no worker is running: start one with `restore worker`"
    return JSONResponse(body, status_code=200 if workers else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
