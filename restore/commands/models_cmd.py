"""`restore models`: list the shipped models and verify their checksums."""
from __future__ import annotations

import json
from typing import Annotated

import typer

from restore.engine import providers_for
from restore.errors import RestoreError
from restore.models import load_manifest, verify
from restore.settings import Settings


def models(as_json: Annotated[bool, typer.Option("--json", help="print the manifest entries as JSON")] = False) -> None:
    """List the models and check each file's sha256. Exit code 1 if any is missing or altered."""
    settings = Settings()
    try:
        manifest = load_manifest(settings.models_dir)
    except RestoreError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1)
    rows, bad = [], 0
    for m in manifest.values():
        try:
            verify(m)
            status = "ok"
        except RestoreError as e:
            status, bad = f"FAILED: {e}", bad + 1
        rows.append({"name": m.name, "version": m.version, "task": m.task, "file": str(m.path), "status": status, "metrics": m.metrics})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        typer.echo(f"providers available for device auto: {', '.join(providers_for('auto'))}")
        for r in rows:
            typer.echo(f"{r['name']:<24} v{r['version']:<6} {r['task']:<12} {r['status']}  {r['file']}")
    if bad:
        raise typer.Exit(1)
