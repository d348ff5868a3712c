"""The job store: job records and blobs (upload, guidance, results) in Redis, each with a TTL and a size cap.

Keys: restore:job:{id} (hash), restore:job:{id}:input, restore:job:{id}:guide:{kind},
restore:job:{id}:result:{i}, restore:batch:{id} (hash), restore:leases (sorted set: running job -> lease
expiry), restore:leases:seen-expired (sorted set: job -> when its lease was first found run out), restore:owner:{owner}:active (sorted set: unfinished job -> created), restore:owner:{owner}:rate:{minute}.
Celery messages carry only the job id.

Bounds: the upload and its guidance are deleted when the job finishes, whatever its end; results live
`ttl` seconds, or `downloaded_ttl` after their first download if that is sooner.
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
LEASES = "restore:leases"
LEASES_SEEN_EXPIRED = "restore:leases:seen-expired"  # job -> when a sweep first found its lease run out
_JSON_FIELDS = {"options", "metrics", "providers", "timings", "guidance"}

# HSET only while the record exists, is not canceled and, when a run token is given, still belongs to that
# run: a worker finishing a job that was canceled, deleted or handed to another run meanwhile must neither
# bring it back nor overwrite what happened.
_UPDATE_LIVE = """
if redis.call('exists', KEYS[1]) == 0 or redis.call('hget', KEYS[1], 'status') == 'canceled' then
  return 0
end
if ARGV[1] ~= '' and redis.call('hget', KEYS[1], 'run') ~= ARGV[1] then
  return 0
end
redis.call('hset', KEYS[1], unpack(ARGV, 2))
return 1
"""

# Start a run: count the delivery and take the lease, only on an existing record that is queued, or running
# under a lease that has expired (its worker died). Returns the attempt number, or a reason it may not run.
_START = """
if redis.call('exists', KEYS[1]) == 0 then return 'gone' end
local status = redis.call('hget', KEYS[1], 'status')
if status == 'succeeded' or status == 'failed' or status == 'canceled' then return status end
if status == 'running' then
  local lease = tonumber(redis.call('zscore', KEYS[2], ARGV[1]) or '0')
  if lease > tonumber(ARGV[3]) then return 'leased' end
end
local attempt = redis.call('hincrby', KEYS[1], 'attempts', 1)
redis.call('hset', KEYS[1], 'status', 'running', 'run', ARGV[2], 'started', ARGV[3], 'error', '')
redis.call('zadd', KEYS[2], ARGV[4], ARGV[1])
return attempt
"""

# Cancel a job that has not finished: the status changes only if it is still queued or running.
_CANCEL = """
local status = redis.call('hget', KEYS[1], 'status')
if status == 'queued' or status == 'running' then
  redis.call('hset', KEYS[1], 'status', 'canceled', 'finished', ARGV[1])
  redis.call('zrem', KEYS[2], ARGV[2])
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
    guidance: list = field(default_factory=list)  # the guidance kinds stored with the upload
    created: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    tiles_done: int = 0
    tiles_total: int = 0
    attempts: int = 0
    results: int = 0
    run: str = ""  # the token of the run that owns the job now
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
    def __init__(self, client: redis.Redis, ttl_s: int, max_blob_bytes: int, downloaded_ttl_s: int | None = None):
        self.redis = client
        self.ttl = ttl_s
        self.downloaded_ttl = min(downloaded_ttl_s or ttl_s, ttl_s)
        self.max_blob = max_blob_bytes
        self._update = client.register_script(_UPDATE_LIVE)
        self._start = client.register_script(_START)
        self._cancel = client.register_script(_CANCEL)

    @classmethod
    def from_url(cls, url: str, ttl_s: int, max_blob_bytes: int, downloaded_ttl_s: int | None = None) -> JobStore:
        # Short timeouts: a Redis that is down must turn into a fast 503, not a hung request.
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30)
        return cls(client, ttl_s, max_blob_bytes, downloaded_ttl_s)

    @staticmethod
    def key(job_id: str, part: str = "") -> str:
        return f"restore:job:{job_id}" + (f":{part}" if part else "")

    @staticmethod
    def batch_key(batch_id: str) -> str:
        return f"restore:batch:{batch_id}"

    @staticmethod
    def active_key(owner: str) -> str:
        return f"restore:owner:{owner or '-'}:active"

    def _check_size(self, blob: bytes, what: str) -> None:
        if len(blob) > self.max_blob:
            raise BlobTooLarge(f"{what} is {len(blob) / 2**20:.1f} MB; the store's limit is {self.max_blob / 2**20:.1f} MB")

    def create(self, job: Job, blob: bytes | None, guidance: dict[str, bytes] | None = None) -> None:
        """Store a job, its upload and its guidance images (None for a job refused at submission: only
        the record is kept, to report the refusal)."""
        guidance = guidance or {}
        for data, what in ((blob, "the upload"), *((g, f"the {k}") for k, g in guidance.items())):
            if data is not None:
                self._check_size(data, what)
        job.created = job.created or time.time()
        job.guidance = sorted(guidance)
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key(job.id), mapping=job.to_redis())
            pipe.expire(self.key(job.id), self.ttl)
            if blob is not None:
                pipe.set(self.key(job.id, "input"), blob, ex=self.ttl)
                pipe.zadd(self.active_key(job.owner), {job.id: job.created})
                pipe.expire(self.active_key(job.owner), self.ttl)
            for kind, data in guidance.items():
                pipe.set(self.key(job.id, f"guide:{kind}"), data, ex=self.ttl)
            pipe.execute()

    def in_flight(self, owner: str) -> int:
        """The owner's jobs not yet finished (records older than the TTL are forgotten)."""
        key = self.active_key(owner)
        with self.redis.pipeline() as pipe:
            pipe.zremrangebyscore(key, "-inf", time.time() - self.ttl)
            pipe.zcard(key)
            return int(pipe.execute()[1])

    def count_submission(self, owner: str, count: int = 1) -> int:
        """Submissions this minute by the owner, these included."""
        key = f"restore:owner:{owner or '-'}:rate:{int(time.time() // 60)}"
        with self.redis.pipeline() as pipe:
            pipe.incrby(key, count)
            pipe.expire(key, 120)
            return int(pipe.execute()[0])

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

    def update(self, job_id: str, as_run: str = "", **values) -> bool:
        """Set fields of a live job (of this run, if a run token is given); False (and nothing written)
        if it is gone, canceled or another run's now."""
        args = [as_run]
        for k, v in values.items():
            args += [k, json.dumps(v) if k in _JSON_FIELDS else v]
        return bool(self._update(keys=[self.key(job_id)], args=args))

    def start(self, job_id: str, run: str, lease_s: float) -> int | str:
        """Take the job for a run: its attempt number, or why not ('gone', a final status, or 'leased':
        another run holds a live lease on it)."""
        now = time.time()
        answer = self._start(keys=[self.key(job_id), LEASES], args=[job_id, run, now, now + lease_s])
        return int(answer) if isinstance(answer, int) else answer.decode()

    def renew(self, job_id: str, run: str, lease_s: float) -> bool:
        """Extend the run's lease; False if the job is no longer this run's."""
        if self.redis.hget(self.key(job_id), "run") != run.encode():
            return False
        self.redis.zadd(LEASES, {job_id: time.time() + lease_s}, xx=True)
        return True

    def expired_leases(self, grace_s: float = 0.0, limit: int = 100) -> list[str]:
        """Running jobs whose lease ran out and has stayed out for grace_s since a sweep first found it so:
        their worker died. A run that was only cut off from Redis (for longer than its lease) renews within
        the grace once Redis is back, and keeps its job instead of having it run again."""
        now = time.time()
        expired = [j.decode() for j in self.redis.zrangebyscore(LEASES, "-inf", now, start=0, num=limit)]
        if not expired:
            self.redis.delete(LEASES_SEEN_EXPIRED)  # what was noted has been renewed or released since
            return []
        with self.redis.pipeline() as pipe:
            pipe.zadd(LEASES_SEEN_EXPIRED, {j: now for j in expired}, nx=True)
            pipe.zrange(LEASES_SEEN_EXPIRED, 0, -1, withscores=True)
            seen = {j.decode(): t for j, t in pipe.execute()[1]}
        stale = set(seen) - set(expired)
        if stale:
            self.redis.zrem(LEASES_SEEN_EXPIRED, *stale)
        return [j for j in expired if now - seen.get(j, now) >= grace_s]

    def release(self, job_id: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.zrem(LEASES, job_id)
            pipe.zrem(LEASES_SEEN_EXPIRED, job_id)
            pipe.execute()

    def requeue(self, job_id: str, run: str) -> bool:
        """Put a running job whose lease expired back in the queue (the run token is cleared, so the old
        run can write nothing more); False if it is not that run's any more."""
        if not self.update(job_id, run, status="queued", run="", tiles_done=0):
            self.release(job_id)
            return False
        self.release(job_id)
        return True

    def finish(self, job_id: str, run: str, **values) -> bool:
        """End a run: the final fields, the lease released, the upload and its guidance deleted, and the
        record kept as long as its results. False if the job was canceled, deleted or re-run meanwhile."""
        if not self.update(job_id, run, **values):
            return False
        job = self.get(job_id)
        with self.redis.pipeline() as pipe:
            pipe.zrem(LEASES, job_id)
            pipe.delete(*self._input_keys(job_id, job.guidance if job else ()))
            pipe.expire(self.key(job_id), self.ttl)
            if job is not None:
                pipe.zrem(self.active_key(job.owner), job_id)
            pipe.execute()
        return True

    def input(self, job_id: str) -> bytes | None:
        return self.redis.get(self.key(job_id, "input"))

    def guidance(self, job_id: str, kinds) -> dict[str, bytes | None]:
        return {kind: self.redis.get(self.key(job_id, f"guide:{kind}")) for kind in kinds}

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

    def downloaded(self, job_id: str) -> None:
        """A result was fetched: from the first download, the job and its results live downloaded_ttl at most."""
        if not self.redis.hsetnx(self.key(job_id), "downloaded", time.time()):
            return
        keys = [self.key(job_id), *self._result_keys(job_id)]
        # Shorten, never lengthen (EXPIRE's LT flag would need Redis 7): -2 is a missing key, -1 one without a TTL.
        with self.redis.pipeline() as pipe:
            for key in keys:
                pipe.ttl(key)
            ttls = pipe.execute()
        with self.redis.pipeline() as pipe:
            for key, ttl in zip(keys, ttls):
                if ttl == -1 or ttl > self.downloaded_ttl:
                    pipe.expire(key, self.downloaded_ttl)
            pipe.execute()

    def _input_keys(self, job_id: str, kinds=("mask", "hints")) -> list[str]:
        return [self.key(job_id, "input"), *(self.key(job_id, f"guide:{k}") for k in kinds)]

    def _result_keys(self, job_id: str) -> list[str]:
        return [self.key(job_id, f"result:{i}") for i in range(MAX_RESULTS)]

    def cancel(self, job_id: str) -> None:
        """DELETE: a queued or running job is marked canceled and its blobs dropped (the record stays until
        its TTL, so pollers see why); a finished job is deleted outright."""
        job = self.get(job_id)
        if self._cancel(keys=[self.key(job_id), LEASES], args=[time.time(), job_id]):
            with self.redis.pipeline() as pipe:
                pipe.delete(*self._input_keys(job_id), *self._result_keys(job_id))
                if job is not None:
                    pipe.zrem(self.active_key(job.owner), job_id)
                pipe.execute()
        else:
            self.delete(job_id)

    def drop_results(self, job_id: str) -> None:
        self.redis.delete(*self._result_keys(job_id))

    def delete(self, *job_ids: str) -> None:
        """Delete jobs outright; a worker then finds a queued one gone, a running one canceled."""
        if not job_ids:
            return
        owners = self.redis.pipeline()
        for job_id in job_ids:
            owners.hget(self.key(job_id), "owner")
        keys = [k for job_id in job_ids for k in (self.key(job_id), *self._input_keys(job_id), *self._result_keys(job_id))]
        with self.redis.pipeline() as pipe:
            for job_id, owner in zip(job_ids, owners.execute()):
                if owner is not None:
                    pipe.zrem(self.active_key(owner.decode()), job_id)
            pipe.delete(*keys)
            pipe.zrem(LEASES, *job_ids)
            pipe.execute()
