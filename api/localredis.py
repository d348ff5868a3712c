"""A redis-server of one's own, for the service bench and the tests: a free port on 127.0.0.1, a
temporary folder, append-only persistence when asked. It never touches another Redis on the machine."""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRedis:
    def __init__(self, folder: Path | None = None, appendonly: bool = False, options: tuple[str, ...] = ()):
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (Debian: apt install redis-server)")
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="restore-redis-")
        self.folder = Path(folder or self._tmp.name)
        self.port, self.appendonly, self.options = free_port(), appendonly, options
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10) -> LocalRedis:
        """Start (or start again, on the same port and folder: with AOF, with the data it had) and wait
        until it answers."""
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always", *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except (redis.ConnectionError, redis.BusyLoadingError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not start")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)

    def close(self) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
