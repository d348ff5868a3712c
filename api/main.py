"""The FastAPI app: `uvicorn restore.api.main:create_app --factory` (or `restore serve`)."""
from __future__ import annotations

import logging
import re
import secrets

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.exception_handlers import http_exception_handler
from fastapi_offline import FastAPIOffline
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException

from restore import __version__
from restore.api.guard import RequestGuard
from restore.api.metrics import RedisCollector
from restore.api.routes import batches, jobs, page, system
from restore.api.submission import Busy, DecodeGate
from restore.errors import InputError, ModelError, TooLarge
from restore.workers.celery_app import create_celery
from restore.workers.settings import ServiceSettings
from restore.workers.store import BlobTooLarge, JobStore

log = logging.getLogger("restore.api")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    # Swagger UI and ReDoc from assets in the installed package (fastapi-offline), so /docs works offline.
    # The form parser's own cap on file parts (1,000 by default) would otherwise refuse a batch the settings
    # allow: every photo may come with a mask and a hint image.
    app = FastAPIOffline(title="restore", version=__version__, description="Image restoration with trained autoencoders",
                         form_limits={"max_files": 3 * settings.max_batch_files + 16})
    app.state.settings = settings
    app.state.store = JobStore.from_url(settings.redis_url, settings.job_ttl_s, settings.max_blob_bytes, settings.downloaded_ttl_s)
    app.state.celery = create_celery(settings)
    app.state.gate = DecodeGate(settings.decode_budget_mb * 2**20)
    app.state.registry = CollectorRegistry()
    app.state.registry.register(RedisCollector(app.state.store))
    # The key and the body size are checked before FastAPI parses (and spools) any upload.
    app.add_middleware(RequestGuard, api_keys=settings.api_keys, metrics_keys=settings.metrics_keys,
                       max_job_bytes=3 * settings.max_bytes + 2**20, max_batch_bytes=settings.max_batch_bytes)

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        """Every response carries an X-Request-ID (the client's, if it sent a sane one); the log names it."""
        given = request.headers.get("x-request-id", "")
        request.state.id = given if REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.id
        return response

    app.include_router(jobs.router)
    app.include_router(batches.router)
    app.include_router(system.router)
    app.include_router(page.router)
    page.mount(app)

    # Domain errors become HTTP statuses here, at the edge, and nowhere else.
    def error(status: int):
        return lambda request, exc: JSONResponse({"detail": str(exc)}, status_code=status, headers=_id(request))

    app.add_exception_handler(TooLarge, error(413))
    app.add_exception_handler(BlobTooLarge, error(413))
    app.add_exception_handler(InputError, error(400))
    app.add_exception_handler(ModelError, error(503))  # this server lacks (or has a broken) model for the task

    def busy(request: Request, exc: Busy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after), **_id(request)})

    app.add_exception_handler(Busy, busy)

    def unavailable(request: Request, exc: Exception) -> JSONResponse:
        # What went wrong inside stays in the log (with the request id); the client learns what to do.
        full = isinstance(exc, redis.exceptions.OutOfMemoryError)
        log.warning("request %s: the job store failed: %r", _rid(request), exc)
        detail = "the server is full; retry later" if full else "the job store is unavailable; retry shortly"
        return JSONResponse({"detail": f"{detail} (request {_rid(request)})"}, status_code=503,
                            headers={"Retry-After": "30" if full else "5", **_id(request)})

    # Redis refusing a command because it is full or a read-only replica is as passing as its being down.
    for exc in (redis.ConnectionError, redis.TimeoutError, redis.exceptions.OutOfMemoryError,
                redis.exceptions.ReadOnlyError, OperationalError):
        app.add_exception_handler(exc, unavailable)

    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400 and exc.detail == "Invalid multipart data.":
            # The form parser's own reason, which Starlette keeps only as the exception's cause.
            cause = exc.__context__.__cause__ if exc.__context__ is not None else None
            if "header size" in str(cause):
                detail = "a part of the form has headers over 4 KB: give the file a shorter name (at most 255 characters)"
            else:
                detail = f"the form data cannot be read ({cause or 'malformed multipart'}); send multipart/form-data"
            return JSONResponse({"detail": detail}, status_code=400, headers=_id(request))
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, http_error)

    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A missing or mistyped field is a bad request like any other: 400 with one readable line.
        reasons = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'the request'}: {e.get('msg', 'invalid')}"
                            for e in exc.errors()[:10])
        return JSONResponse({"detail": f"bad request: {reasons}"}, status_code=400, headers=_id(request))

    app.add_exception_handler(RequestValidationError, invalid)

    def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("request %s failed", _rid(request), exc_info=exc)
        return JSONResponse({"detail": f"internal error (request {_rid(request)})"}, status_code=500, headers=_id(request))

    app.add_exception_handler(Exception, internal)
    return app


def _rid(request: Request) -> str:
    return getattr(request.state, "id", "-")


def _id(request: Request) -> dict:
    return {"X-Request-ID": _rid(request)}
