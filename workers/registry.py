"""Live workers announce themselves in Redis (queues, device, providers), renewing every TTL_S / 3.

One hash of worker -> info with an expiry time, so finding the live workers (on every submission, for
/readyz and /metrics) reads one key however many jobs Redis holds. The API uses it to pick a queue
(gpu when a GPU worker is up) and to answer /readyz.
"""
from __future__ import annotations

import json
import socket
import threading
import time

import redis

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


def start_heartbeat(client: redis.Redis, info: dict, stop: threading.Event) -> threading.Thread:
    name = f"{socket.gethostname()}:{info.get('pid')}"

    def beat():
        while not stop.is_set():
            try:
                announce(client, name, info)
            except redis.RedisError:
                pass  # Redis is down: the entry expires, /readyz says so; retry at the next beat
            stop.wait(TTL_S / 3)
        client.hdel(KEY, name)

    thread = threading.Thread(target=beat, name="restore-heartbeat", daemon=True)
    thread.start()
    return thread
