"""The service's bounds: memory for hostile images, jobs and submissions per key, how long blobs live,
what a batch with nothing acceptable leaves behind, and every response of a schema-driven fuzzer."""
import struct
import threading
import zlib
from pathlib import Path

import httpx
import hypothesis
import pytest
from fastapi.testclient import TestClient

from restore.api.main import create_app
from restore.workers.settings import ServiceSettings
from tests.service.conftest import REDIS_URL, png_bytes, serving, wait_for


def zero_png(width: int, height: int) -> bytes:
    """An all-black RGB PNG, built row by row: a few hundred KB that decode to width x height x 3 bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    squeeze = zlib.compressobj(9)
    row = bytes(1 + 3 * width)  # filter byte 0, then the pixels
    idat = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def peak_rss_mb(pid: int) -> float:
    """The process's resident-memory high-water mark (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc")


def test_a_100_megapixel_bomb_costs_the_api_little_memory(rdb):
    """A 100-megapixel all-zero PNG (under 300 KB) is checked from its header: the API's peak memory stays
    under 300 MB for one, and under 600 MB for four sent at once."""
    bomb = zero_png(10_000, 10_000)
    assert len(bomb) < 400_000
    with serving(None) as (base, process):
        httpx.get(base + "/healthz")
        post = lambda: httpx.post(base + "/v1/jobs", files={"file": ("bomb.png", bomb, "image/png")}, timeout=120)  # noqa: E731
        assert post().status_code == 202
        one = peak_rss_mb(process.pid)
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(post().status_code)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        four = peak_rss_mb(process.pid)
    assert answers == [202] * 4
    assert one < 300, f"peak {one:.0f} MB for one"
    assert four < 600, f"peak {four:.0f} MB for four at once"


def test_jobs_in_flight_and_submissions_per_minute_are_bounded_per_key(rdb, identity_models):
    settings = ServiceSettings(_env_file=None, redis_url=REDIS_URL, models_dir=identity_models, api_keys=["a", "b"],
                               max_in_flight=2, max_per_minute=3)
    with TestClient(create_app(settings)) as client:
        send = lambda key: client.post("/v1/jobs", files={"file": ("x.png", png_bytes(), "image/png")}, headers={"X-API-Key": key})  # noqa: E731
        first, second = send("a"), send("a")
        assert first.status_code == second.status_code == 202
        third = send("a")  # no worker runs: two are unfinished
        assert third.status_code == 429 and third.headers["retry-after"] == "10" and "unfinished" in third.json()["detail"]
        assert send("b").status_code == 202  # another key has its own bounds
        client.delete(f"/v1/jobs/{first.json()['id']}", headers={"X-API-Key": "a"})  # canceled: no longer in flight
        assert send("a").status_code == 202  # the third submission of the minute
        client.delete(f"/v1/jobs/{second.json()['id']}", headers={"X-API-Key": "a"})
        fourth = send("a")
        assert fourth.status_code == 429 and fourth.headers["retry-after"] == "60" and "a minute" in fourth.json()["detail"]


def test_blobs_are_bounded_in_time(rdb, identity_models, workers):
    """The upload goes when the job ends; results live job_ttl_s, or downloaded_ttl_s after a download."""
    settings = ServiceSettings(_env_file=None, redis_url=REDIS_URL, models_dir=identity_models, job_ttl_s=600, downloaded_ttl_s=60)
    workers.start(identity_models, RESTORE_JOB_TTL_S=600, RESTORE_DOWNLOADED_TTL_S=60)
    with TestClient(create_app(settings)) as client:
        job_id = client.post("/v1/jobs", files={"file": ("x.png", png_bytes(), "image/png")}).json()["id"]
        assert wait_for(client, job_id)["status"] == "succeeded"
        assert not rdb.exists(f"restore:job:{job_id}:input")
        assert rdb.ttl(f"restore:job:{job_id}:result:0") > 60 and rdb.ttl(f"restore:job:{job_id}") > 60
        assert client.get(f"/v1/jobs/{job_id}/result").status_code == 200
        assert 0 < rdb.ttl(f"restore:job:{job_id}:result:0") <= 60 and 0 < rdb.ttl(f"restore:job:{job_id}") <= 60
        assert client.get(f"/v1/jobs/{job_id}/result").status_code == 200  # downloads again until then


def test_a_batch_with_no_acceptable_file_is_refused_and_leaves_nothing(client, rdb):
    files = [("files", ("a.png", b"", "image/png")), ("files", ("b.png", b"BM", "image/png"))]
    r = client.post("/v1/batches", files=files, data={"task": "denoise"})
    assert r.status_code == 400 and "a.png: a.png is an empty file" in r.json()["detail"] and "corrupt BMP" in r.json()["detail"]
    assert not list(rdb.scan_iter("restore:job:*")) and not list(rdb.scan_iter("restore:batch:*")) and rdb.llen("cpu") == 0
    one_good = files + [("files", ("c.png", png_bytes(), "image/png"))]
    body = client.post("/v1/batches", files=one_good, data={"task": "denoise"}).json()
    assert body["counts"]["failed"] == 2 and body["counts"]["queued"] == 1  # each bad file is its own error


def test_schema_driven_requests_never_get_a_server_error(rdb, identity_models):
    """A bounded run of schemathesis over every operation of the OpenAPI schema: whatever the request,
    no 5xx (the jobs it queues wait for a worker that never comes, which is fine)."""
    schemathesis = pytest.importorskip("schemathesis")
    app = create_app(ServiceSettings(_env_file=None, redis_url=REDIS_URL, models_dir=identity_models))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # /readyz answers 503 by design while no worker runs; every other operation takes the fuzzer's input.
    operations = [op for op in (result.ok() for result in schema.get_all_operations()) if op.path != "/readyz"]
    assert len(operations) >= 8
    for operation in operations:

        @hypothesis.settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(hypothesis.HealthCheck))
        @hypothesis.given(case=operation.as_strategy())
        def check(case):
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])

        check()


def test_the_api_docs_are_served_from_local_assets(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "/static-offline-docs/" in html and "cdn" not in html.lower() and "https://" not in html, page
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/static-offline-docs/redoc.standalone.js").status_code == 200
