"""Checks that must run before FastAPI parses a request body: the API key and the body's size.

FastAPI reads a whole multipart body (spooling it to disk) before any route or dependency runs, so a
size cap or a key check there would come after an unauthenticated client had already filled the disk.
"""
from __future__ import annotations

import hmac
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send


def key_ok(given: str | None, keys: list[str]) -> bool:
    """Constant-time comparison against every configured key."""
    return given is not None and any(hmac.compare_digest(given.encode(), k.encode()) for k in keys)


class _TooLarge(HTTPException):
    """An HTTPException, so FastAPI lets it through while parsing a form (any other error there becomes
    its 400 "error parsing the body") and Starlette answers it with this 413."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request is over the limit of {limit / 2**20:.1f} MB")


# Outside /v1/, these tell about the service's insides (worker processes, devices, queue depths): with keys
# configured they need one too (an API key, or one of the metrics keys). /healthz and the web page stay open.
DETAILS = ("/metrics", "/readyz")


class RequestGuard:
    def __init__(self, app: ASGIApp, api_keys: list[str], max_job_bytes: int, max_batch_bytes: int, metrics_keys: list[str] = ()):
        self.app, self.keys, self.metrics_keys = app, api_keys, [*api_keys, *metrics_keys]
        self.max_job_bytes, self.max_batch_bytes = max_job_bytes, max_batch_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["path"] in DETAILS:
            if self.metrics_keys and not key_ok(headers.get("x-api-key"), self.metrics_keys):
                return await _reply(send, 401, "missing or unknown X-API-Key", {"www-authenticate": "X-API-Key"})
            return await self.app(scope, receive, send)
        if not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        if self.keys and not key_ok(headers.get("x-api-key"), self.keys):
            return await _reply(send, 401, "missing or unknown X-API-Key", {"www-authenticate": "X-API-Key"})
        limit = self.max_batch_bytes if scope["path"].startswith("/v1/batches") else self.max_job_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return await _reply(send, 413, f"the request is {int(length) / 2**20:.1f} MB; the limit is {limit / 2**20:.1f} MB")
        seen, started = 0, False

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:  # no or a false Content-Length: stop reading at the limit
                raise _TooLarge(limit)
            return message

        async def tracked(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge as e:  # raised where no handler answered it
            if not started:
                await _reply(send, 413, e.detail)


async def _reply(send: Send, status: int, detail: str, headers: dict | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
