"""The service's client: `restore batch IN OUT --server URL` sends a folder through the HTTP API.

A bounded number of jobs are in flight at once. The ids of submitted jobs are kept in a state file in
OUT_DIR, with a fingerprint of the task, options and format, so a batch that was stopped picks its
jobs up again when run again with the same settings instead of resubmitting them; finished outputs
already on disk are skipped with --skip-existing.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import httpx

from restore.batch import BatchItem, Outcome, already_done, sample_path
from restore.errors import InputError, RestoreError
from restore.io import atomic_write, format_for_path

STATE = ".restore-batch-state.json"
RETRIES = 8  # for 503s and dropped connections, with backoff: a restarting service is waited for


class Unreachable(RestoreError):
    """The service did not answer, or stayed unavailable, through every retry: the batch stops here."""


class ServiceClient:
    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 120):
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        for attempt in range(RETRIES):
            try:
                response = self.http.request(method, url, **kwargs)
                # A 503 with Retry-After is an outage (Redis down) worth waiting for; one without it is
                # an answer (no model for the task on this server) that waiting would not change.
                if response.status_code != 503 or "retry-after" not in response.headers:
                    return response
            except httpx.TransportError as e:
                if attempt == RETRIES - 1:
                    raise Unreachable(f"cannot reach the service at {self.http.base_url}: {e}") from e
            time.sleep(min(0.5 * 2**attempt, 10))
        raise Unreachable(f"the service at {self.http.base_url} stayed unavailable (503)")

    def submit(self, path: Path, task: str, options: dict, guidance: dict[str, Path] | None = None) -> str:
        """Send one image (and its guidance images, by kind) as a job; its id."""
        files = {"file": (path.name, Path(path).read_bytes())}
        files |= {kind: (g.name, Path(g).read_bytes()) for kind, g in (guidance or {}).items()}
        r = self._request("POST", "/v1/jobs", files=files, data={"task": task, "options": json.dumps(options)})
        if r.status_code == 429:  # this key's limits: wait as told, then send again
            time.sleep(min(float(r.headers.get("retry-after", 5)), 60))
            return self.submit(path, task, options, guidance)
        if r.status_code in (400, 413):
            raise InputError(r.json()["detail"])  # the file's own error, as the in-process batch would say
        if r.status_code != 202:
            raise RestoreError(f"the service refused the job: {r.status_code} {_detail(r)}")
        return r.json()["id"]

    def status(self, job_id: str) -> dict | None:
        r = self._request("GET", f"/v1/jobs/{job_id}")
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise RestoreError(f"the service answered {r.status_code} for job {job_id}: {r.text[:300]}")
        return r.json()

    def result(self, job_id: str, sample: int = 0) -> bytes:
        r = self._request("GET", f"/v1/jobs/{job_id}/result", params={"sample": sample})
        if r.status_code != 200:
            raise RestoreError(f"cannot download the result of job {job_id}: {r.status_code} {r.text[:300]}")
        return r.content


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return r.text[:300]


def run_remote_batch(
    items: list[BatchItem], client: ServiceClient, task: str, options: dict, fmt: str | None, state_dir: Path,
    skip_existing: bool = False, in_flight: int = 8, on_done: Callable[[Outcome], None] | None = None,
    poll_s: float = 0.2, guidance: Callable[[BatchItem], dict[str, Path]] | None = None,
) -> list[Outcome]:
    """Like restore.batch.run_batch, through the service; outcomes in the items' order. guidance(item):
    the guidance images (by kind) to send with an item."""
    state_path = state_dir / STATE
    fingerprint = hashlib.sha256(json.dumps([task, options, fmt], sort_keys=True).encode()).hexdigest()[:16]
    saved = json.loads(state_path.read_text()) if state_path.exists() else {}
    # Jobs sent with other settings are not this batch's results: start over for those files.
    state: dict[str, str] = saved.get("jobs", {}) if saved.get("settings") == fingerprint else {}

    def save() -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(state_path, json.dumps({"settings": fingerprint, "jobs": state}).encode())

    outcomes: dict[BatchItem, Outcome] = {}
    waiting: deque[BatchItem] = deque()
    for item in items:
        if skip_existing and already_done(item):
            outcomes[item] = Outcome(str(item.source), str(item.target), "skipped")
            state.pop(str(item.source), None)
            on_done and on_done(outcomes[item])
        else:
            waiting.append(item)
    active: dict[str, tuple[BatchItem, float]] = {}

    def finish(item: BatchItem, outcome: Outcome) -> None:
        outcomes[item] = outcome
        state.pop(str(item.source), None)
        on_done and on_done(outcome)

    try:
        while waiting or active:
            while waiting and len(active) < in_flight:
                item = waiting[0]  # taken off the queue only once it is sent: Unreachable leaves it there
                job_id = state.get(str(item.source))
                if job_id is None or client.status(job_id) is None:  # never sent, or expired on the server
                    try:
                        # The same format the in-process batch would write: the flag, else the target's suffix.
                        job_id = client.submit(item.source, task, {**options, "format": fmt or format_for_path(item.target) or None},
                                               guidance(item) if guidance else None)
                    except Unreachable:
                        raise
                    except RestoreError as e:  # this file's refusal (bad input, no model for the task, ...)
                        waiting.popleft()
                        finish(item, Outcome(str(item.source), str(item.target), "failed", str(e)))
                        continue
                    state[str(item.source)] = job_id
                    save()
                waiting.popleft()
                active[job_id] = (item, time.perf_counter())
            time.sleep(poll_s)
            for job_id, (item, t0) in list(active.items()):
                job = client.status(job_id)
                if job is not None and job["status"] in ("queued", "running"):
                    continue
                del active[job_id]
                outcome = Outcome(str(item.source), str(item.target), "failed", seconds=round(time.perf_counter() - t0, 3))
                if job is None:
                    outcome.error = "the job expired on the server before it finished"
                elif job["status"] != "succeeded":
                    outcome.error = job["error"] or f"the job was {job['status']}"
                else:
                    try:
                        item.target.parent.mkdir(parents=True, exist_ok=True)
                        for i in range(job.get("results") or 1):  # colorize's samples: name, name_1, ...
                            atomic_write(sample_path(item.target, i), client.result(job_id, i))
                        outcome.status, outcome.metrics = "ok", job["metrics"]
                    except Unreachable:
                        active[job_id] = (item, t0)  # still the batch's to finish, next run
                        raise
                    except RestoreError as e:  # this file's failure, not the batch's
                        outcome.error = str(e)
                finish(item, outcome)
    except Unreachable as e:  # the rest are not done; their jobs stay in the state file for the next run
        for item in [*waiting, *(item for item, _ in active.values())]:
            outcomes[item] = Outcome(str(item.source), str(item.target), "failed", f"{e}; run the same command again to resume")
            on_done and on_done(outcomes[item])
    if state:
        save()
    else:
        state_path.unlink(missing_ok=True)
    return [outcomes[item] for item in items]
