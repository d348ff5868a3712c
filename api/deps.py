"""Dependencies as named aliases, so route signatures read like prose."""
from __future__ import annotations

import hashlib
from typing import Annotated

from celery import Celery
from fastapi import Depends, Header, HTTPException, Request

from restore.api.guard import key_ok
from restore.api.submission import DecodeGate
from restore.workers.settings import ServiceSettings
from restore.workers.store import JobStore


def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


def get_store(request: Request) -> JobStore:
    return request.app.state.store


def get_celery(request: Request) -> Celery:
    return request.app.state.celery


def get_gate(request: Request) -> DecodeGate:
    return request.app.state.gate


def get_owner(settings: Annotated[ServiceSettings, Depends(get_settings)], x_api_key: Annotated[str | None, Header()] = None) -> str:
    """The caller's identity: a hash of its API key when keys are configured, else everyone is ''."""
    if not settings.api_keys:
        return ""
    if not key_ok(x_api_key, settings.api_keys):  # RequestGuard refused these already; kept for routes' sake
        raise HTTPException(401, "missing or unknown X-API-Key", headers={"WWW-Authenticate": "X-API-Key"})
    return hashlib.sha256(x_api_key.encode()).hexdigest()[:24]


async def sent_task(request: Request) -> str:
    """The form's task as sent. FastAPI gives an empty form field its default, so an empty task would run
    denoise unasked: read it from the form itself, and let the pipeline refuse an empty one."""
    value = (await request.form()).get("task")
    return "denoise" if value is None else str(value)


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
CeleryDep = Annotated[Celery, Depends(get_celery)]
GateDep = Annotated[DecodeGate, Depends(get_gate)]
OwnerDep = Annotated[str, Depends(get_owner)]
TaskDep = Annotated[str, Depends(sent_task)]
