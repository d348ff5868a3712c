"""Live workers announce themselves in Redis (queues, device, providers) with a short TTL.

The API reads this to pick a queue (gpu when a GPU worker is up) and to answer /readyz.
"""
from __future__ import annotations

import json
import socket
import threading

import redis

KEY = "restore:worker:"
TTL_S = 30


def announce(client: redis.Redis, name: str, info: dict) -> None:
    client.set(KEY + name, json.dumps(info), ex=TTL_S)


def live_workers(client: redis.Redis) -> list[dict]:
    keys = list(client.scan_iter(KEY + "*", count=100))
    values = client.mget(keys) if keys else []
    return [json.loads(v) for v in values if v]


def start_heartbeat(client: redis.Redis, info: dict, stop: threading.Event) -> threading.Thread:
    name = f"{socket.gethostname()}:{info.get('pid')}"

    def beat():
        while not stop.is_set():
            try:
                announce(client, name, info)
            except redis.RedisError:
                pass  # Redis is down: the key expires, /readyz says so; retry at the next beat
            stop.wait(TTL_S / 3)
        client.delete(KEY + name)

    thread = threading.Thread(target=beat, name="restore-heartbeat", daemon=True)
    thread.start()
    return thread
