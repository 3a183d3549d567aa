"""A real `symbol-pipeline serve` process for tests, and parallel clients that race against it.

The server runs as production runs it (the CLI's `serve`, its protocol and settings), in its own
process, so that races, timeouts and database faults meet the real event loop, threads and pool.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command() -> list[str]:
    script = Path(sys.executable).parent / "symbol-pipeline"
    return [str(script)] if script.exists() else [sys.executable, "-m", "symbol_pipeline.cli.main"]


@contextlib.contextmanager
def serve_process(database_url: str, folder: Path, env: Mapping[str, str] | None = None,
                  start_seconds: float = 120) -> Iterator[str]:
    """`symbol-pipeline serve` on `database_url`, started and stopped around the block; yields its
    base URL. Its log is `folder / "server.log"` (shown when it fails to start)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = folder / "server.log"
    environment = {**os.environ, "SYMBOL_PIPELINE_DATABASE_URL": database_url,
                   "SYMBOL_PIPELINE_DATA_DIR": str(folder / "data"), **(env or {})}
    with open(log_path, "wb") as log:  # the server keeps its own descriptor
        server = subprocess.Popen([*_command(), "serve", "--port", str(port), "--log-level", "warning"],
                                  env=environment, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                httpx.get(f"{base}/openapi.json", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise AssertionError("the API did not start: " + log_path.read_text()) from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


# One request of a race: method, URL and httpx's keyword arguments (headers, json, content).
Request = tuple[str, str, Mapping[str, Any]]


class Racers:
    """`n` clients on their own threads and kept-alive connections; `race(requests)` sends the
    requests together (a barrier) and returns the responses in their order."""

    def __init__(self, base: str, n: int, headers: Mapping[str, str] | None = None) -> None:
        self.clients = [httpx.Client(base_url=base, headers=dict(headers or {}), timeout=60) for _ in range(n)]
        self.pool = ThreadPoolExecutor(n)

    def race(self, requests: Sequence[Request]) -> list[httpx.Response]:
        assert len(requests) <= len(self.clients)
        barrier = threading.Barrier(len(requests))

        def run(i: int) -> httpx.Response:
            method, url, kwargs = requests[i]
            barrier.wait(30)
            return self.clients[i].request(method, url, **kwargs)

        return list(self.pool.map(run, range(len(requests))))

    def close(self) -> None:
        self.pool.shutdown()
        for client in self.clients:
            client.close()
