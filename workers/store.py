"""The job store: job records and blobs (upload, results) in Redis, each with a TTL and a size cap.

Keys: restore:job:{id} (hash), restore:job:{id}:input, restore:job:{id}:result:{i},
restore:batch:{id} (hash). Celery messages carry only the job id.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field, fields

import redis

from restore.errors import RestoreError

TERMINAL = ("succeeded", "failed", "canceled")
MAX_RESULTS = 8  # results per job: one image, or up to 8 samples
STATES = ("queued", "running", *TERMINAL)
_JSON_FIELDS = {"options", "metrics", "providers", "timings"}

# HSET only while the record exists and is not canceled: a worker finishing a job that was canceled
# or deleted meanwhile must neither bring it back nor overwrite the cancellation.
_UPDATE_LIVE = """
if redis.call('exists', KEYS[1]) == 1 and redis.call('hget', KEYS[1], 'status') ~= 'canceled' then
  redis.call('hset', KEYS[1], unpack(ARGV))
  return 1
end
return 0
"""


# HINCRBY only on an existing record: a duplicate delivery must not recreate a deleted job.
_COUNT_ATTEMPT = """
if redis.call('exists', KEYS[1]) == 1 then
  return redis.call('hincrby', KEYS[1], 'attempts', 1)
end
return nil
"""

# Cancel a job that has not finished: the status changes only if it is still queued or running.
_CANCEL = """
local status = redis.call('hget', KEYS[1], 'status')
if status == 'queued' or status == 'running' then
  redis.call('hset', KEYS[1], 'status', 'canceled', 'finished', ARGV[1])
  return 1
end
return 0
"""


class BlobTooLarge(RestoreError):
    """An upload or a result is over the store's size cap."""


def new_id() -> str:
    return secrets.token_urlsafe(18)  # 144 random bits: unguessable


@dataclass
class Job:
    id: str
    task: str
    owner: str = ""
    options: dict = field(default_factory=dict)
    status: str = "queued"
    queue: str = "cpu"
    input_name: str = ""
    output_format: str = ""
    batch: str = ""
    created: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    tiles_done: int = 0
    tiles_total: int = 0
    attempts: int = 0
    results: int = 0
    error: str = ""
    device: str = ""
    providers: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

    def to_redis(self) -> dict:
        return {k: json.dumps(v) if k in _JSON_FIELDS else v for k, v in asdict(self).items()}

    @classmethod
    def from_redis(cls, raw: dict) -> Job:
        types = {f.name: f.type for f in fields(cls)}
        values = {}
        for key, value in raw.items():
            key = key.decode() if isinstance(key, bytes) else key
            value = value.decode() if isinstance(value, bytes) else value
            if key not in types:
                continue
            if key in _JSON_FIELDS:
                values[key] = json.loads(value)
            elif types[key] == "int":
                values[key] = int(value)
            elif types[key] == "float":
                values[key] = float(value)
            else:
                values[key] = value
        return cls(**values)


class JobStore:
    def __init__(self, client: redis.Redis, ttl_s: int, max_blob_bytes: int):
        self.redis = client
        self.ttl = ttl_s
        self.max_blob = max_blob_bytes
        self._update = client.register_script(_UPDATE_LIVE)
        self._count = client.register_script(_COUNT_ATTEMPT)
        self._cancel = client.register_script(_CANCEL)

    @classmethod
    def from_url(cls, url: str, ttl_s: int, max_blob_bytes: int) -> JobStore:
        # Short timeouts: a Redis that is down must turn into a fast 503, not a hung request.
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30)
        return cls(client, ttl_s, max_blob_bytes)

    @staticmethod
    def key(job_id: str, part: str = "") -> str:
        return f"restore:job:{job_id}" + (f":{part}" if part else "")

    @staticmethod
    def batch_key(batch_id: str) -> str:
        return f"restore:batch:{batch_id}"

    def _check_size(self, blob: bytes, what: str) -> None:
        if len(blob) > self.max_blob:
            raise BlobTooLarge(f"{what} is {len(blob) / 2**20:.1f} MB; the store's limit is {self.max_blob / 2**20:.1f} MB")

    def create(self, job: Job, blob: bytes | None, mask: bytes | None = None) -> None:
        """Store a job, its upload (None for a job refused at submission: only the record is kept) and
        the user's mask, if any."""
        for data, what in ((blob, "the upload"), (mask, "the mask")):
            if data is not None:
                self._check_size(data, what)
        job.created = job.created or time.time()
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key(job.id), mapping=job.to_redis())
            pipe.expire(self.key(job.id), self.ttl)
            if blob is not None:
                pipe.set(self.key(job.id, "input"), blob, ex=self.ttl)
            if mask is not None:
                pipe.set(self.key(job.id, "mask"), mask, ex=self.ttl)
            pipe.execute()

    def create_batch(self, batch_id: str, owner: str, task: str, job_ids: list[str], names: list[str]) -> None:
        key = self.batch_key(batch_id)
        record = {"id": batch_id, "owner": owner, "task": task, "created": time.time(),
                  "jobs": json.dumps(job_ids), "names": json.dumps(names)}
        with self.redis.pipeline() as pipe:
            pipe.hset(key, mapping=record)
            pipe.expire(key, self.ttl)
            pipe.execute()

    def delete_batch(self, batch_id: str) -> None:
        self.redis.delete(self.batch_key(batch_id))

    def get_batch(self, batch_id: str) -> dict | None:
        raw = {k.decode(): v.decode() for k, v in self.redis.hgetall(self.batch_key(batch_id)).items()}
        if not raw:
            return None
        return {**raw, "jobs": json.loads(raw["jobs"]), "names": json.loads(raw["names"]), "created": float(raw["created"])}

    def get(self, job_id: str) -> Job | None:
        raw = self.redis.hgetall(self.key(job_id))
        return Job.from_redis(raw) if raw else None

    def update(self, job_id: str, **values) -> bool:
        """Set fields of a live job; False (and nothing written) if it is gone or canceled."""
        args = []
        for k, v in values.items():
            args += [k, json.dumps(v) if k in _JSON_FIELDS else v]
        return bool(self._update(keys=[self.key(job_id)], args=args))

    def keep(self, job_id: str) -> None:
        """A finished job's record expires with its results (written just before), not at its creation's TTL."""
        self.redis.expire(self.key(job_id), self.ttl)

    def count_attempt(self, job_id: str) -> int | None:
        """This delivery's number, or None if the job is gone."""
        n = self._count(keys=[self.key(job_id)])
        return None if n is None else int(n)

    def input(self, job_id: str) -> bytes | None:
        return self.redis.get(self.key(job_id, "input"))

    def mask(self, job_id: str) -> bytes | None:
        return self.redis.get(self.key(job_id, "mask"))

    def put_results(self, job_id: str, blobs: list[bytes]) -> None:
        if len(blobs) > MAX_RESULTS:
            raise RestoreError(f"{len(blobs)} results; a job keeps at most {MAX_RESULTS}")
        for i, blob in enumerate(blobs):
            self._check_size(blob, f"result {i}")
        with self.redis.pipeline() as pipe:
            for i, blob in enumerate(blobs):
                pipe.set(self.key(job_id, f"result:{i}"), blob, ex=self.ttl)
            pipe.execute()

    def result(self, job_id: str, index: int = 0) -> bytes | None:
        return self.redis.get(self.key(job_id, f"result:{index}"))

    def _blob_keys(self, job_id: str) -> list[str]:
        return [self.key(job_id, "input"), self.key(job_id, "mask"), *self._result_keys(job_id)]

    def _result_keys(self, job_id: str) -> list[str]:
        return [self.key(job_id, f"result:{i}") for i in range(MAX_RESULTS)]

    def cancel(self, job_id: str) -> None:
        """DELETE: a queued or running job is marked canceled and its blobs dropped (the record stays until
        its TTL, so pollers see why); a finished job is deleted outright."""
        if self._cancel(keys=[self.key(job_id)], args=[time.time()]):
            self.redis.delete(*self._blob_keys(job_id))
        else:
            self.delete(job_id)

    def drop_results(self, job_id: str) -> None:
        self.redis.delete(*self._result_keys(job_id))

    def delete(self, *job_ids: str) -> None:
        """Delete jobs outright; a worker then finds a queued one gone, a running one canceled."""
        keys = [k for job_id in job_ids for k in (self.key(job_id), *self._blob_keys(job_id))]
        if keys:
            self.redis.delete(*keys)
