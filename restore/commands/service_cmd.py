"""`restore serve` and `restore worker`: start the service's processes.

These two commands are the one place the `restore` command reaches the api and workers packages, and
only inside their bodies: the core library itself never imports either.
"""
from __future__ import annotations

import os
from typing import Annotated, Optional

import typer


def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Run the HTTP API (FastAPI under uvicorn). Settings: RESTORE_* environment variables."""
    import uvicorn

    uvicorn.run("restore.api.main:create_app", factory=True, host=host, port=port, workers=workers)


def worker(
    queues: Annotated[str, typer.Option(help="queues to consume: cpu, gpu or cpu,gpu")] = "cpu",
    concurrency: Annotated[int, typer.Option(help="jobs run at once (pool processes)")] = 1,
    device: Annotated[Optional[str], typer.Option(help="auto | cpu | cuda (default: cuda for the gpu queue)")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
) -> None:
    """Run a Celery worker that executes jobs. Settings: RESTORE_* environment variables."""
    if device or "gpu" in queues.split(","):
        os.environ["RESTORE_DEVICE"] = device or "cuda"
    # Share the cores among the pool processes, or they fight over them.
    os.environ.setdefault("RESTORE_THREADS", str(max(1, (os.cpu_count() or 1) // concurrency)))
    from restore.workers.worker import app

    app.worker_main(["worker", "-Q", queues, "-c", str(concurrency), "-l", loglevel, "-n", f"restore-{os.getpid()}@%h"])
