"""Service settings: the core's, plus Redis, limits and time limits. RESTORE_* environment variables."""
from __future__ import annotations

from pydantic import Field, model_validator

from restore.settings import Settings


class ServiceSettings(Settings):
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="the job store and the queue")
    job_ttl_s: int = Field(24 * 3600, ge=10, description="how long jobs and their results live in Redis (uploads: until the job ends)")
    max_blob_bytes: int = Field(256 * 2**20, ge=1, description="largest upload or result kept in Redis")
    soft_time_limit_s: int = Field(600, ge=1, description="a job running longer fails with a clear error")
    hard_time_limit_s: int = Field(660, ge=2, description="a job running longer is killed (its worker process replaced)")
    visibility_timeout_s: int | None = Field(None, description="the broker hands an unacknowledged message out again after this; None: hard time limit + 60 s")
    max_deliveries: int = Field(3, ge=1, description="runs of one job before it is failed (worker deaths)")
    lease_s: int = Field(45, ge=5, description="a running job whose worker has not renewed its lease for this long is queued again")
    redis_wait_s: int = Field(300, ge=0, description="how long a running job waits for Redis to come back before giving up its run")
    downloaded_ttl_s: int = Field(3600, ge=10, description="how long results live after their first download (at most job_ttl_s)")
    max_in_flight: int = Field(1000, ge=1, description="unfinished jobs one API key (or everyone, without keys) may have")
    max_per_minute: int = Field(600, ge=1, description="submissions one API key may make per minute")
    decode_budget_mb: int = Field(256, ge=16, description="memory the API may spend decoding uploads to check them, all requests together")
    max_memory_per_child_kb: int = Field(4 * 2**20, ge=0, description="recycle a pool child above this RSS")
    api_keys: list[str] = Field(default_factory=list, description="if set, X-API-Key must be one of them")
    metrics_keys: list[str] = Field(default_factory=list, description="keys that may read /metrics and /readyz (besides api_keys)")
    max_batch_files: int = Field(1000, ge=1, description="files one POST /v1/batches may carry")
    max_batch_bytes: int = Field(2 * 2**30, ge=1, description="largest POST /v1/batches request body")

    @model_validator(mode="after")
    def _limits(self):
        if self.hard_time_limit_s <= self.soft_time_limit_s:
            raise ValueError("hard_time_limit_s must be above soft_time_limit_s")
        if self.visibility_timeout_s is None:
            self.visibility_timeout_s = self.hard_time_limit_s + 60
        if self.visibility_timeout_s <= self.hard_time_limit_s:
            # Otherwise a job still running would be handed to a second worker.
            raise ValueError("visibility_timeout_s must be above hard_time_limit_s")
        return self
