"""A real `symbol-pipeline serve` process for tests, and parallel clients that race against it.

The server runs as production runs it (the CLI's `serve`, its protocol and settings), in its own
process, so that races, timeouts and database faults meet the real event loop, threads and pool.
The root conftest starts one per backend for the session (`sqlite_api_server`, `pg_api_server`):
a server start costs seconds of imports, and the tests that use one each create their own users.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from symbol_pipeline.storage.database import get_engine
from symbol_pipeline_tests.portfolio_data import seed_symbols

# Told apart in pg_stat_activity: the server's connections, which fault tests terminate.
APP_NAME = "sp_served_api"
# What the shared servers are started with: the onboarding cap the race tests fill, and a header
# timeout short enough for the slow-client test, long enough that no other client on a busy
# machine is ever that slow.
SERVED_ENV = {"SYMBOL_PIPELINE_ONBOARDING_DAILY_CAP": "100", "SYMBOL_PIPELINE_API_HEADER_TIMEOUT_SECONDS": "3"}


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


@dataclass(frozen=True)
class ServedApi:
    """A running `symbol-pipeline serve`: its base URL, and the test's own engine on its database."""

    base: str
    engine: sa.Engine
    backend: str
    database: str  # the PostgreSQL database's name; the file's path on SQLite


def served_api(url: str, folder: Path, backend: str) -> Iterator[ServedApi]:
    """Start the server on `url` (created or upgraded first, symbol AAA priced with a beta) for as
    long as the generator runs."""
    engine = get_engine(url)
    seed_symbols(engine, {"AAA": {"market_beta": 1.0}}, {"AAA": 10.0})
    server_url = f"{url}?application_name={APP_NAME}" if backend == "postgresql" else url
    try:
        with serve_process(server_url, folder, SERVED_ENV) as base:
            yield ServedApi(base, engine, backend, url.rsplit("/", 1)[1])
    finally:
        engine.dispose()
