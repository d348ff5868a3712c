"""The FastAPI app: `uvicorn api.main:create_app --factory` (or `restore serve`)."""
from __future__ import annotations

import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from prometheus_client import CollectorRegistry

from api.guard import RequestGuard
from api.metrics import RedisCollector
from api.routes import batches, jobs, system
from restore import __version__
from restore.errors import InputError, ModelError, TooLarge
from workers.celery_app import create_celery
from workers.settings import ServiceSettings
from workers.store import BlobTooLarge, JobStore


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    app = FastAPI(title="restore", version=__version__, description="Image restoration with trained autoencoders")
    app.state.settings = settings
    app.state.store = JobStore.from_url(settings.redis_url, settings.job_ttl_s, settings.max_blob_bytes)
    app.state.celery = create_celery(settings)
    app.state.registry = CollectorRegistry()
    app.state.registry.register(RedisCollector(app.state.store))
    # The key and the body size are checked before FastAPI parses (and spools) any upload.
    app.add_middleware(RequestGuard, api_keys=settings.api_keys, max_job_bytes=2 * settings.max_bytes + 2**20,
                       max_batch_bytes=settings.max_batch_bytes)
    app.include_router(jobs.router)
    app.include_router(batches.router)
    app.include_router(system.router)

    # Domain errors become HTTP statuses here, at the edge, and nowhere else.
    def error(status: int):
        return lambda request, exc: JSONResponse({"detail": str(exc)}, status_code=status)

    app.add_exception_handler(TooLarge, error(413))
    app.add_exception_handler(BlobTooLarge, error(413))
    app.add_exception_handler(InputError, error(400))
    app.add_exception_handler(ModelError, error(503))  # this server lacks (or has a broken) model for the task

    def unavailable(request: Request, exc: Exception) -> JSONResponse:
        # Every request opens its connection anew from the pool, so the API recovers by itself.
        what = "refused the command" if isinstance(exc, redis.ResponseError) else "is unreachable"
        return JSONResponse({"detail": f"the job store (Redis) {what}, try again shortly: {exc}"},
                            status_code=503, headers={"Retry-After": "5"})

    # Redis refusing a command because it is full or a read-only replica is as passing as its being down;
    # other refusals (a wrong type, a missing script) are bugs and stay 500s.
    for exc in (redis.ConnectionError, redis.TimeoutError, redis.exceptions.OutOfMemoryError,
                redis.exceptions.ReadOnlyError, OperationalError):
        app.add_exception_handler(exc, unavailable)
    return app
