"""`restore serve` and `restore worker`: start the service's processes (the service extra).

These two commands are the one place the `restore` command reaches the api and workers packages, and
only inside their bodies: the core library itself never imports either.
"""
from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from restore.workers.settings import ServiceSettings


def settings_table() -> str:
    """Every RESTORE_* setting with its default and meaning, for the commands' help."""
    lines = []
    for name, field in ServiceSettings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default
        lines.append(f"  RESTORE_{name.upper()} = {default!r}: {field.description}")
    return "Settings, from the environment:\n\n\b\n" + "\n".join(lines)


def _service_extra(command: str) -> None:
    try:
        import celery  # noqa: F401
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        typer.echo(f"error: restore {command} needs the service extra ({e.name} is missing): pip install 'restore-photos[service]'", err=True)
        raise typer.Exit(1)


def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Run the HTTP API and the web page (FastAPI under uvicorn): http://HOST:PORT/ in a browser."""
    _service_extra("serve")
    import uvicorn

    uvicorn.run("restore.api.main:create_app", factory=True, host=host, port=port, workers=workers)


def worker(
    queues: Annotated[str, typer.Option(help="queues to consume: cpu, gpu or cpu,gpu")] = "cpu",
    concurrency: Annotated[int, typer.Option(help="jobs run at once (pool processes)")] = 1,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu or cuda [default: cuda for the gpu queue, else RESTORE_DEVICE]", show_default=False)] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
) -> None:
    """Run a Celery worker that executes jobs."""
    _service_extra("worker")
    if device or "gpu" in queues.split(","):
        os.environ["RESTORE_DEVICE"] = device or "cuda"
    # Share the cores among the pool processes, or they fight over them.
    os.environ.setdefault("RESTORE_THREADS", str(max(1, (os.cpu_count() or 1) // concurrency)))
    from restore.workers.worker import app

    app.worker_main(["worker", "-Q", queues, "-c", str(concurrency), "-l", loglevel, "-n", f"restore-{os.getpid()}@%h"])
