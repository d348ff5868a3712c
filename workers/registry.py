"""Live workers announce themselves in Redis (queues, device, providers), renewing every TTL_S / 3.

One hash of worker -> info with an expiry time, so finding the live workers (on every submission, for
/readyz and /metrics) reads one key however many jobs Redis holds. The API uses it to pick a queue
(gpu when a GPU worker is up) and to answer /readyz.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Callable

import redis

log = logging.getLogger(__name__)
KEY = "restore:workers"
TTL_S = 30


def announce(client: redis.Redis, name: str, info: dict) -> None:
    client.hset(KEY, name, json.dumps({**info, "expires": time.time() + TTL_S}))


def live_workers(client: redis.Redis) -> list[dict]:
    now, live, dead = time.time(), [], []
    for name, raw in client.hgetall(KEY).items():
        info = json.loads(raw)
        if info["expires"] > now:
            live.append(info)
        else:
            dead.append(name)
    if dead:  # a worker that died without retiring
        client.hdel(KEY, *dead)
    return live


def worker_name(pid: int) -> str:
    """How a worker is known in the registry (and as a lock's owner): host and process."""
    return f"{socket.gethostname()}:{pid}"


def serving(client: redis.Redis, queue: str) -> bool:
    """Whether a live worker consumes this queue."""
    return any(queue in w.get("queues", ()) for w in live_workers(client))


def start_heartbeat(client: redis.Redis, info: dict, stop: threading.Event,
                    on_beat: Callable[[], object] | None = None) -> threading.Thread:
    """Announce this worker every TTL_S / 3 and run on_beat after each announcement."""
    name = worker_name(info.get("pid"))

    def beat():
        while not stop.is_set():
            try:
                announce(client, name, info)
                if on_beat:
                    on_beat()
            except redis.RedisError:
                pass  # Redis is down: the entry expires, /readyz says so; retry at the next beat
            except Exception:  # a failing chore must not stop the announcements
                log.exception("heartbeat chore failed")
            stop.wait(TTL_S / 3)
        client.hdel(KEY, name)

    thread = threading.Thread(target=beat, name="restore-heartbeat", daemon=True)
    thread.start()
    return thread
