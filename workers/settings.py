"""Service settings: the core's, plus Redis, limits and time limits. RESTORE_* environment variables."""
from __future__ import annotations

from pydantic import Field, model_validator

from restore.settings import Settings


class ServiceSettings(Settings):
    redis_url: str = "redis://127.0.0.1:6379/0"
    job_ttl_s: int = Field(24 * 3600, ge=10, description="how long jobs and their blobs live in Redis")
    max_blob_bytes: int = Field(256 * 2**20, ge=1, description="largest upload or result kept in Redis")
    soft_time_limit_s: int = Field(600, ge=1)
    hard_time_limit_s: int = Field(660, ge=2)
    visibility_timeout_s: int | None = Field(None, description="default: hard time limit + 60 s")
    max_deliveries: int = Field(3, ge=1, description="runs of one job before it is failed (worker deaths)")
    max_memory_per_child_kb: int = Field(4 * 2**20, ge=0, description="recycle a pool child above this RSS")
    api_keys: list[str] = Field(default_factory=list, description="if set, X-API-Key must be one of them")
    max_batch_files: int = Field(1000, ge=1)
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
