"""Prometheus metrics read from Redis at scrape time, so they cover every API and worker process."""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from restore.workers.celery_app import QUEUES
from restore.workers.registry import live_workers
from restore.workers.store import JobStore, STATES


class RedisCollector(Collector):
    def __init__(self, store: JobStore):
        self.store = store

    def collect(self):
        r = self.store.redis
        finished = r.hgetall("restore:stats")
        jobs = CounterMetricFamily("restore_jobs_finished", "jobs that reached a final state", labels=["state"])
        for state in STATES[2:]:
            jobs.add_metric([state], float(finished.get(state.encode(), 0)))
        yield jobs
        submitted = CounterMetricFamily("restore_jobs_submitted", "jobs accepted by the API")
        submitted.add_metric([], float(r.get("restore:stats:submitted") or 0))
        yield submitted
        depth = GaugeMetricFamily("restore_queue_depth", "jobs waiting in each queue", labels=["queue"])
        for queue in QUEUES:
            depth.add_metric([queue], float(r.llen(queue)))
        yield depth
        seconds = r.hgetall("restore:stats:seconds")
        run = GaugeMetricFamily("restore_job_seconds", "total and count of job run seconds", labels=["stat"])
        for stat in ("sum", "count"):
            run.add_metric([stat], float(seconds.get(stat.encode(), 0)))
        yield run
        workers = GaugeMetricFamily("restore_workers", "live workers")
        workers.add_metric([], float(len(live_workers(r))))
        yield workers
