"""Submit, poll, fetch, cancel, chains, bad uploads, expiry, keys: the API with a real worker."""
import io
import json
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from restore.api.main import create_app
from tests.service.conftest import REDIS_URL, pixels, png_bytes, wait_for
from restore.workers.settings import ServiceSettings


def submit(client, data, task="denoise", options=None, name="a.png", headers=None):
    form = {"task": task} | ({"options": json.dumps(options)} if options is not None else {})
    return client.post("/v1/jobs", files={"file": (name, data, "image/png")}, data=form, headers=headers)


def test_submit_poll_fetch(client, workers, identity_models):
    workers.start(identity_models)
    data = png_bytes(1)
    r = submit(client, data, options={"strength": 0.7})
    assert r.status_code == 202
    job_id = r.json()["id"]
    assert r.headers["location"] == f"/v1/jobs/{job_id}" and len(job_id) >= 22
    body = wait_for(client, job_id)
    assert body["status"] == "succeeded", body
    assert body["providers"] == ["CPUExecutionProvider"] and body["device"] == "cpu" and body["attempts"] == 1
    assert body["metrics"]["tasks"][0]["strength"] == 0.7 and body["progress"]["fraction"] == 1.0
    assert body["timings"]["run_seconds"] is not None
    result = client.get(f"/v1/jobs/{job_id}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    assert (pixels(result.content) == pixels(data)).all()  # the identity model: exactly the input back
    assert client.get(f"/v1/jobs/{job_id}/result?sample=1").status_code == 404


def test_chain_and_format(client, workers, identity_models):
    workers.start(identity_models)
    r = submit(client, png_bytes(2), task="denoise,denoise", options={"format": "webp"})
    body = wait_for(client, r.json()["id"])
    assert body["status"] == "succeeded" and [m["task"] for m in body["metrics"]["tasks"]] == ["denoise", "denoise"]
    assert body["task"] == "denoise,denoise"
    result = client.get(f"/v1/jobs/{body['id']}/result")
    assert result.headers["content-type"] == "image/webp"


def test_result_is_409_until_ready_and_cancel(client, workers, identity_models, rdb):
    r = submit(client, png_bytes(3))  # no worker yet: it waits in the queue
    job_id = r.json()["id"]
    assert client.get(f"/v1/jobs/{job_id}/result").status_code == 409
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    body = client.get(f"/v1/jobs/{job_id}").json()
    assert body["status"] == "canceled"
    assert "canceled" in client.get(f"/v1/jobs/{job_id}/result").json()["detail"]
    assert not rdb.exists(f"restore:job:{job_id}:input")  # a canceled job's upload is dropped at once
    workers.start(identity_models)
    # The worker takes the message and must leave the canceled job alone: a job sent after it finishes
    # first (one worker, one at a time), and the canceled one is still canceled then.
    after = submit(client, png_bytes(4)).json()["id"]
    assert wait_for(client, after)["status"] == "succeeded"
    assert rdb.llen("cpu") == 0
    body = client.get(f"/v1/jobs/{job_id}").json()
    assert body["status"] == "canceled" and body["attempts"] == 0
    assert client.delete("/v1/jobs/nope").status_code == 404


@pytest.mark.parametrize(
    "data,task,options,status,message",
    [
        (b"", "denoise", None, 400, "empty"),
        (b"not an image at all", "denoise", None, 400, "not a readable image"),
        (png_bytes()[:60], "denoise", None, 400, "corrupt"),
        (png_bytes(), "sharpen", None, 400, "unknown task 'sharpen'"),
        (png_bytes(), "denoise", {"strength": "loud"}, 400, "bad options for denoise"),
        (png_bytes(), "", None, 400, "no task given"),
        (png_bytes(), "colorize,colorize,colorize", {"samples": 8}, 400, "makes 512 images per input; the limit is 8"),
        (png_bytes(), ",".join(["denoise"] * 5), None, 400, "a chain of 5 tasks; the limit is 4"),
        (b"B", "denoise", None, 400, "not a readable image"),
        (b"BM", "denoise", None, 400, "corrupt BMP header"),
        (b"BM\x00", "denoise", None, 400, "corrupt BMP header"),
        (png_bytes(), "denoise", {"a": [[[[[[[[[[1]]]]]]]]]]}, 400, "nested 11 deep; the limit is 8"),
        (png_bytes(), "denoise", {"nope": 1}, 400, "unknown option(s) nope"),
        (png_bytes(), "denoise", {"format": "gif"}, 400, "unknown format 'gif'"),
        (png_bytes(size=(17000, 2)), "denoise", {"format": "webp"}, 400, "WEBP holds at most 16383 px"),
        (png_bytes(size=(3000, 3000)), "denoise", None, 413, "refused without decoding"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_queued(rdb, identity_models, data, task, options, status, message):
    settings = ServiceSettings(_env_file=None, redis_url=REDIS_URL, models_dir=identity_models, max_pixels=4_000_000)
    with TestClient(create_app(settings)) as client:
        r = submit(client, data, task, options)
    assert r.status_code == status and message in r.json()["detail"], r.json()
    assert rdb.llen("cpu") == 0 and not list(rdb.scan_iter("restore:job:*"))


def test_options_must_be_a_json_object_of_bounded_depth_and_size(client):
    r = client.post("/v1/jobs", files={"file": ("a.png", png_bytes(), "image/png")}, data={"options": "[1]"})
    assert r.status_code == 400 and "JSON object" in r.json()["detail"]
    deep = "[" * 1000 + "]" * 1000  # the parser's recursion limit is well below this
    for route, field in (("/v1/jobs", "file"), ("/v1/batches", "files")):
        r = client.post(route, files={field: ("a.png", png_bytes(), "image/png")}, data={"options": deep})
        assert r.status_code == 400 and "nested 1000 deep" in r.json()["detail"], r.text
    r = client.post("/v1/jobs", files={"file": ("a.png", png_bytes(), "image/png")}, data={"options": '{"x": "' + "y" * 70000 + '"}'})
    assert r.status_code == 400 and "the limit is 65,536" in r.json()["detail"]


def test_every_response_names_its_request(client):
    r = client.post("/v1/jobs", files={"file": ("a.png", b"", "image/png")})
    assert r.status_code == 400 and len(r.headers["x-request-id"]) == 16
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"


def test_long_file_names_are_a_clear_error(client):
    r = client.post("/v1/jobs", files={"file": ("x" * 1_000 + ".png", png_bytes(), "image/png")})
    assert r.status_code == 400 and "file name is 1,004 characters; the limit is 255" in r.json()["detail"], r.text
    r = client.post("/v1/jobs", files={"file": ("x" * 10_000 + ".png", png_bytes(), "image/png")})  # past the form parser's limit
    assert r.status_code == 400 and "give the file a shorter name" in r.json()["detail"], r.text


def test_multi_frame_images_are_refused_with_a_clear_message(client):
    frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (0, 128, 255)]
    for fmt in ("WEBP", "TIFF"):
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:])
        r = client.post("/v1/jobs", files={"file": ("a." + fmt.lower(), buf.getvalue(), "image/x")})
        assert r.status_code == 400 and "holds 3 frames or pages" in r.json()["detail"], r.text


def test_jobs_expire(rdb, identity_models):
    settings = ServiceSettings(_env_file=None, redis_url=REDIS_URL, models_dir=identity_models, job_ttl_s=10)
    with TestClient(create_app(settings)) as client:
        job_id = submit(client, png_bytes()).json()["id"]
        assert client.get(f"/v1/jobs/{job_id}").status_code == 200
        assert 0 < rdb.ttl(f"restore:job:{job_id}") <= 10 and 0 < rdb.ttl(f"restore:job:{job_id}:input") <= 10
        rdb.pexpire(f"restore:job:{job_id}", 1)  # fast-forward the TTL rather than sleep for it
        time.sleep(0.05)
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404


def test_api_keys_keep_jobs_private(rdb, identity_models):
    settings = ServiceSettings(_env_file=None, redis_url=REDIS_URL, models_dir=identity_models, api_keys=["alice-key", "bob-key"])
    with TestClient(create_app(settings)) as client:
        assert submit(client, png_bytes()).status_code == 401
        assert submit(client, png_bytes(), headers={"X-API-Key": "mallory"}).status_code == 401
        job_id = submit(client, png_bytes(), headers={"X-API-Key": "alice-key"}).json()["id"]
        assert client.get(f"/v1/jobs/{job_id}", headers={"X-API-Key": "alice-key"}).status_code == 200
        assert client.get(f"/v1/jobs/{job_id}", headers={"X-API-Key": "bob-key"}).status_code == 404
        assert client.delete(f"/v1/jobs/{job_id}", headers={"X-API-Key": "bob-key"}).status_code == 404


def test_models_health_ready_and_metrics(client, workers, identity_models):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "no worker" in ready.json()["detail"]
    assert sorted(m["name"] for m in client.get("/v1/models").json()) == ["tiny-colorize", "tiny-denoise", "tiny-dewatermark"]
    workers.start(identity_models)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["workers"][0]["providers"] == ["CPUExecutionProvider"]
    assert ready.json()["workers"][0]["device"] == "cpu" and ready.json()["workers"][0]["queues"] == ["cpu"]
    wait_for(client, submit(client, png_bytes()).json()["id"])
    text = client.get("/metrics").text
    assert 'restore_jobs_finished_total{state="succeeded"} 1.0' in text
    assert "restore_jobs_submitted_total 1.0" in text and 'restore_queue_depth{queue="cpu"} 0.0' in text
    assert "restore_workers 1.0" in text


def test_dewatermark_with_a_user_mask(client, workers, identity_models):
    workers.start(identity_models)
    hint = np.zeros((20, 40), np.uint8)
    hint[:, :10] = 255  # the user marks a quarter of the image
    image, mask = encode_png(np.zeros((20, 40, 3), np.uint8)), encode_png(hint)
    files = {"file": ("a.png", image, "image/png"), "mask": ("m.png", mask, "image/png")}
    body = wait_for(client, client.post("/v1/jobs", files=files, data={"task": "dewatermark"}).json()["id"])
    assert body["status"] == "succeeded", body
    metrics = body["metrics"]["tasks"][0]
    assert metrics["guided"] is True and metrics["watermarked_fraction"] == pytest.approx(0.25)
    wrong = {"file": files["file"], "mask": ("m.png", png_bytes(0, size=(10, 10)), "image/png")}
    r = client.post("/v1/jobs", files=wrong, data={"task": "dewatermark"})
    assert r.status_code == 400 and "must match" in r.json()["detail"]
    r = client.post("/v1/jobs", files=files, data={"task": "denoise"})
    assert r.status_code == 400 and "used only by dewatermark" in r.json()["detail"]


def encode_png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def test_worker_errors_end_the_job_and_deleted_jobs_stay_deleted(rdb, identity_models):
    """Any failure ends the job as failed; a delivery for a deleted job neither runs nor recreates it."""
    from restore.settings import Settings
    from restore.tasks.base import Context
    from restore.workers.store import Job, JobStore
    from restore.workers.tasks import execute

    store = JobStore.from_url(REDIS_URL, 60, 2**20)
    ctx = Context.create(Settings(_env_file=None, models_dir=identity_models))
    service = ServiceSettings(_env_file=None, redis_url=REDIS_URL)
    store.create(Job(id="bad-options", task="denoise", options={"strength": "loud"}), png_bytes())
    assert execute(store, "bad-options", ctx, service) == "failed"
    assert "bad options" in store.get("bad-options").error
    store.create(Job(id="bug", task="denoise", output_format="not-a-format"), png_bytes())
    assert execute(store, "bug", ctx, service) == "failed" and store.get("bug").error
    store.create(Job(id="gone", task="denoise"), png_bytes())
    store.delete("gone")
    assert execute(store, "gone", ctx, service) == "gone"
    assert not rdb.exists("restore:job:gone") and store.start("gone", "run", 10) == "gone" and not rdb.exists("restore:job:gone")
    store.create(Job(id="done", task="denoise"), png_bytes())
    assert execute(store, "done", ctx, service) == "succeeded"
    assert execute(store, "done", ctx, service) == "succeeded"  # a second delivery does nothing
    assert store.get("done").attempts == 1
    # Whatever the end, the upload is gone with it; the record and results stay for the TTL.
    assert not rdb.exists("restore:job:done:input") and not rdb.exists("restore:job:bad-options:input")
    assert rdb.ttl("restore:job:done") > 50 and rdb.ttl("restore:job:done:result:0") > 50
    store.cancel("done")  # DELETE of a finished job deletes it
    assert store.get("done") is None and store.result("done") is None


def test_a_run_whose_lease_expired_is_queued_again_and_the_old_run_writes_nothing(rdb, identity_models):
    """A run that stops renewing its lease (its worker died) is put back in the queue by a live worker's
    sweep, with a new message; the old run, if it comes back, finds the job no longer its own."""
    from restore.workers.celery_app import create_celery
    from restore.workers.store import Job, JobStore
    from restore.workers.sweep import sweep_expired_leases

    store = JobStore.from_url(REDIS_URL, 60, 2**20)
    app = create_celery(ServiceSettings(_env_file=None, redis_url=REDIS_URL))
    store.create(Job(id="orphan", task="denoise"), png_bytes())
    assert store.start("orphan", "dead-run", lease_s=0.2) == 1
    assert store.start("orphan", "second-run", lease_s=10) == "leased"  # a duplicate message while the lease holds
    assert sweep_expired_leases(store, app, 3, "test") == 0  # the lease still holds
    time.sleep(0.3)
    assert sweep_expired_leases(store, app, 3, "test") == 1
    job = store.get("orphan")
    assert job.status == "queued" and job.run == "" and rdb.llen("cpu") == 1
    assert not store.update("orphan", "dead-run", tiles_done=5) and not store.renew("orphan", "dead-run", 10)
    assert not store.finish("orphan", "dead-run", status="succeeded")
    assert store.start("orphan", "new-run", lease_s=10) == 2 and store.get("orphan").status == "running"
    # A job whose every run stopped is failed, not looped.
    store.create(Job(id="doomed", task="denoise"), png_bytes())
    for attempt in range(3):
        store.start("doomed", f"run{attempt}", lease_s=0.01)
        time.sleep(0.05)
        sweep_expired_leases(store, app, 3, "test")
    doomed = store.get("doomed")
    assert doomed.status == "failed" and "gave up after 3 attempts" in doomed.error and not rdb.exists("restore:job:doomed:input")


def test_a_run_cut_off_from_redis_keeps_its_job_if_it_renews_within_the_grace(rdb):
    """The sweep notes an expired lease and hands the job out only if it is still expired grace_s later:
    a run that lost Redis for longer than its lease renews once Redis is back, and keeps the job."""
    from restore.workers.celery_app import create_celery
    from restore.workers.store import Job, JobStore
    from restore.workers.sweep import sweep_expired_leases

    store = JobStore.from_url(REDIS_URL, 60, 2**20)
    app = create_celery(ServiceSettings(_env_file=None, redis_url=REDIS_URL))
    for job_id in ("cut-off", "dead"):
        store.create(Job(id=job_id, task="denoise"), png_bytes())
        assert store.start(job_id, f"{job_id}-run", lease_s=0.1) == 1
    time.sleep(0.2)  # both leases run out
    assert sweep_expired_leases(store, app, 3, "test", grace_s=0.5) == 0  # noted, not yet handed out
    assert store.renew("cut-off", "cut-off-run", 10)  # Redis is back for this run
    time.sleep(0.6)
    assert sweep_expired_leases(store, app, 3, "test", grace_s=0.5) == 1  # only the dead run's job
    assert store.get("cut-off").status == "running" and store.get("cut-off").run == "cut-off-run"
    assert store.get("dead").status == "queued" and rdb.llen("cpu") == 1
    assert rdb.zrange("restore:leases:seen-expired", 0, -1) == []


def test_requests_are_guarded_before_parsing(rdb, identity_models):
    settings = ServiceSettings(_env_file=None, redis_url=REDIS_URL, models_dir=identity_models, max_bytes=10_000, api_keys=["k"])
    with TestClient(create_app(settings)) as client:
        big = png_bytes(size=(300, 300))
        # A job's request may carry an image, a mask and hints: the cap is 3 x max_bytes + 1 MiB.
        r = client.post("/v1/jobs", files={"file": ("a.png", b"x" * (3 * 10_000 + 2**20 + 1))}, headers={"X-API-Key": "k"})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        # Without a Content-Length (chunked), counted as it arrives: still 413, not a parse error.
        boundary = "b0undary"
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'.encode()
        chunks = [head] + [b"x" * 2**16] * 20 + [f"\r\n--{boundary}--\r\n".encode()]
        r = client.post("/v1/jobs", content=iter(chunks), headers={"X-API-Key": "k", "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 413 and "over the limit" in r.json()["detail"]
        r = client.post("/v1/jobs", files={"file": ("a.png", big)})
        assert r.status_code == 401  # refused before the body is read
        assert client.get("/v1/jobs/a:b", headers={"X-API-Key": "k"}).status_code == 404  # not an id: no Redis error
        assert client.get("/healthz").status_code == 200  # outside /v1/: no key needed
        assert client.get("/metrics").status_code == 401 and client.get("/readyz").status_code == 401  # the service's insides
        assert client.get("/metrics", headers={"X-API-Key": "k"}).status_code == 200
        # An upload over the limit is refused from its size, after the guard (whose cap is higher).
        r = client.post("/v1/jobs", files={"file": ("a.png", b"x" * 10_001)}, headers={"X-API-Key": "k"})
        assert r.status_code == 413 and "a.png is 0.0 MB" in r.json()["detail"]


def test_unicode_file_names_download(client, workers, identity_models):
    workers.start(identity_models)
    r = client.post("/v1/jobs", files={"file": ('фото "1".png', png_bytes(), "image/png")})
    body = wait_for(client, r.json()["id"])
    disposition = client.get(f"/v1/jobs/{body['id']}/result").headers["content-disposition"]  # latin-1 safe, no 500
    fallback, encoded = disposition.split('filename="')[1].split('"; filename*=UTF-8\'\'')
    assert fallback.isascii() and fallback.startswith("____ ") and fallback.endswith(".png")
    from urllib.parse import unquote

    assert unquote(encoded).startswith("фото ") and unquote(encoded).endswith(".png")


def test_a_task_without_a_model_is_refused_up_front(rdb, tmp_path, identity_models):
    import json as js
    import shutil

    shutil.copytree(identity_models, tmp_path / "m")
    manifest = js.loads((tmp_path / "m" / "manifest.json").read_text())
    manifest["models"] = [m for m in manifest["models"] if m["task"] != "dewatermark"]
    (tmp_path / "m" / "manifest.json").write_text(js.dumps(manifest))
    settings = ServiceSettings(_env_file=None, redis_url=REDIS_URL, models_dir=tmp_path / "m")
    with TestClient(create_app(settings)) as client:
        r = submit(client, png_bytes(), task="dewatermark")
    assert r.status_code == 503 and "no model for task 'dewatermark'" in r.json()["detail"]
    assert rdb.llen("cpu") == 0


def test_colorize_samples_through_the_service(client, workers, identity_models):
    workers.start(identity_models)
    r = submit(client, png_bytes(4, mode="L"), task="colorize", options={"samples": 3, "seed": 9})
    body = wait_for(client, r.json()["id"])
    assert body["status"] == "succeeded", body
    assert body["results"] == 3 and body["metrics"]["tasks"][0]["seed"] == 9
    got = [client.get(f"/v1/jobs/{body['id']}/result", params={"sample": i}) for i in range(3)]
    assert all(g.status_code == 200 for g in got)
    assert pixels(got[0].content).shape[2] == 3 and len({g.content for g in got}) == 3
    assert 'filename="a_2.png"' in got[2].headers["content-disposition"]
    assert client.get(f"/v1/jobs/{body['id']}/result?sample=3").status_code == 404


def test_the_time_limit_firing_mid_decode_is_not_called_corrupt(rdb, identity_models, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    import restore.pipeline
    import restore.workers.tasks
    from restore.errors import InputError
    from restore.settings import Settings
    from restore.tasks.base import Context
    from restore.workers.store import Job, JobStore

    def slow_decode(data, limits):
        try:
            raise SoftTimeLimitExceeded()
        except Exception as e:  # what restore.io does with anything its decoder raises
            raise InputError("input is corrupt or truncated (SoftTimeLimitExceeded())") from e

    monkeypatch.setattr(restore.pipeline, "read_image", slow_decode)
    store = JobStore.from_url(REDIS_URL, 60, 2**20)
    store.create(Job(id="slow", task="denoise"), png_bytes())
    service = ServiceSettings(_env_file=None, redis_url=REDIS_URL)
    ctx = Context.create(Settings(_env_file=None, models_dir=identity_models))
    assert restore.workers.tasks.execute(store, "slow", ctx, service) == "failed"
    assert "time limit" in store.get("slow").error and "corrupt" not in store.get("slow").error


def test_a_missing_or_mistyped_field_is_a_400_that_names_it(client):
    r = client.post("/v1/jobs", data={"task": "denoise"})
    assert r.status_code == 400 and "file" in r.json()["detail"], r.text
    r = client.get("/v1/jobs/abc/result", params={"sample": "x"})
    assert r.status_code == 400 and "sample" in r.json()["detail"], r.text


def test_batch_guidance_must_match_one_photo_each(rdb, client):
    photos = [("files", ("a.png", png_bytes(1), "image/png")), ("files", ("b.png", png_bytes(2), "image/png"))]
    r = client.post("/v1/batches", data={"task": "dewatermark"}, files=[*photos, ("masks", ("c.png", png_bytes(3, mode="L"), "image/png"))])
    assert r.status_code == 400 and "'c.png' matches no photo" in r.json()["detail"], r.text
    twice = [("masks", ("a.png", png_bytes(3, mode="L"), "image/png")), ("masks", ("a.webp", png_bytes(4, mode="L"), "image/png"))]
    r = client.post("/v1/batches", data={"task": "dewatermark"}, files=[*photos, *twice])
    assert r.status_code == 400 and "two mask images are named 'a'" in r.json()["detail"], r.text
    assert rdb.llen("cpu") == 0 and not list(rdb.scan_iter("restore:job:*"))


def test_a_batch_with_no_acceptable_file_is_refused_whole_and_stores_nothing(rdb, client):
    files = [("files", ("a.png", b"not an image", "image/png")), ("files", ("b.png", b"", "image/png"))]
    r = client.post("/v1/batches", data={"task": "denoise"}, files=files)
    assert r.status_code == 400 and r.json()["detail"].startswith("no file in the batch can be restored: a.png: "), r.text
    assert rdb.llen("cpu") == 0 and not list(rdb.scan_iter("restore:job:*")) and not list(rdb.scan_iter("restore:batch:*"))
