"""Fault: the API process is killed (SIGKILL) while it writes positions.

The real server (uvicorn with the app factory, a subprocess) runs against a PostgreSQL database;
writers post single positions and 40-row imports while a reader fills the exposures cache. The
process is killed when the server has a transaction open. Then every write is all or nothing:
an import's rows all there or none, each position write with its change-log row and version
bump, every acknowledged write stored, and the exposures served afterwards (cache or not)
counting exactly the positions stored.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from symbol_pipeline.services import portfolio as service
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.dialect import cached_engine
from symbol_pipeline.storage.portfolio_schema import portfolio_changes, portfolios, positions
from symbol_pipeline_tests.databases import PG_ADMIN_URL
from symbol_pipeline_tests.portfolio_data import seed_symbols

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SYMBOLS = [f"FLT{c}" for c in "ABCDEFGHIJ"]
IMPORT_ROWS = 40
APP_NAME = "sp_fault_api"  # the server's connections, told apart in pg_stat_activity


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_backends(admin: sa.Engine, database: str) -> list:
    """The server's backends on the test database: (state, open transaction?)."""
    with admin.connect() as conn:
        return conn.execute(sa.text(
            "SELECT state, xact_start IS NOT NULL AS in_transaction FROM pg_stat_activity "
            "WHERE datname = :d AND application_name = :a"), {"d": database, "a": APP_NAME}).all()


class Writers:
    """Threads writing until the server goes away; what it acknowledged is kept."""

    def __init__(self, base: str, key: str, portfolio_id: str):
        self.base, self.headers, self.pid = base, {"Authorization": f"Bearer {key}"}, portfolio_id
        self.acked_ids: list[int] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._singles, args=(n,), daemon=True) for n in range(2)]
        self.threads += [threading.Thread(target=self._imports, args=(n,), daemon=True) for n in range(2)]
        self.threads.append(threading.Thread(target=self._reads, daemon=True))

    def _loop(self, send) -> None:
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=30) as client:
            for i in range(100_000):
                try:
                    response = send(client, i)
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 201:
                    body = response.json()
                    docs = body.get("positions") or [body["position"]]
                    with self.lock:
                        self.acked_ids.extend(d["id"] for d in docs)

    def _singles(self, n: int) -> None:
        # A distinct negative quantity marks each single write.
        self._loop(lambda c, i: c.post("/api/v1/positions", json={
            "portfolio_id": self.pid, "symbol": SYMBOLS[i % len(SYMBOLS)], "quantity": -(1 + n + 2 * i)}))

    def _imports(self, n: int) -> None:
        # Each import's rows share one positive quantity, its mark.
        self._loop(lambda c, i: c.post(f"/api/v1/portfolios/{self.pid}/positions/import", json=[
            {"symbol": SYMBOLS[r % len(SYMBOLS)], "quantity": 1 + n + 2 * i} for r in range(IMPORT_ROWS)]))

    def _reads(self) -> None:
        self._loop(lambda c, _: c.get(f"/api/v1/analytics/portfolio/{self.pid}/factor-exposures"))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()


@pytest.fixture
def server_db(new_pg_database):
    url = new_pg_database("sp_fault_api")
    engine = get_engine(url)
    seed_symbols(engine, {s: {"market_beta": 1.0 + i / 10} for i, s in enumerate(SYMBOLS)},
                 {s: 10.0 + i for i, s in enumerate(SYMBOLS)})
    user = service.create_user(engine, "writer")
    key = service.issue_api_key(engine, "writer")
    portfolio = service.create_portfolio(engine, user.id, "written while killed", 1_000_000)
    yield url, engine, key, portfolio["id"]
    engine.dispose()
    cached_engine.cache_clear()


def _start_server(url: str, tmp_path: Path, port: int, key: str) -> subprocess.Popen:
    env = {**os.environ, "SYMBOL_PIPELINE_DATABASE_URL": f"{url}?application_name={APP_NAME}",
           "SYMBOL_PIPELINE_DATA_DIR": str(tmp_path / "data")}
    with open(tmp_path / "server.log", "wb") as log:  # the server keeps its own descriptor
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "symbol_pipeline.api.app:app_from_environment", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, (tmp_path / "server.log").read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/portfolios",
                         headers={"Authorization": f"Bearer {key}"}, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise AssertionError("the API did not start: " + (tmp_path / "server.log").read_text())


def test_kill_9_during_position_writes_leaves_no_partial_rows(server_db, tmp_path):
    url, engine, key, pid = server_db
    database = url.rsplit("/", 1)[1]
    with engine.connect() as conn:
        version_before = conn.execute(sa.select(portfolios.c.version).where(portfolios.c.id == pid)).scalar_one()
    port = _free_port()
    server = _start_server(url, tmp_path, port, key)
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    writers = Writers(f"http://127.0.0.1:{port}", key, pid)
    try:
        writers.start()
        # Kill once some writes are acknowledged, at a moment the server holds a transaction open.
        open_at_kill, deadline = False, time.monotonic() + 60
        while time.monotonic() < deadline and not open_at_kill:
            open_at_kill = len(writers.acked_ids) > 2 * IMPORT_ROWS and any(
                in_transaction and state != "idle" for state, in_transaction in _server_backends(admin, database))
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        assert open_at_kill, "never caught the server inside a transaction"
        for thread in writers.threads:
            thread.join(30)
        deadline = time.monotonic() + 30  # the server aborts the dead client's transactions
        while _server_backends(admin, database) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _server_backends(admin, database)
    finally:
        if server.poll() is None:
            server.kill()
        admin.dispose()

    with engine.connect() as conn:
        rows = conn.execute(sa.select(positions.c.id, positions.c.quantity).where(positions.c.portfolio_id == pid)).all()
        added = conn.execute(sa.select(sa.func.count()).where(
            portfolio_changes.c.portfolio_id == pid, portfolio_changes.c.kind == "positions_added")).scalar_one()
        changes = conn.execute(sa.select(sa.func.count()).where(
            portfolio_changes.c.portfolio_id == pid, portfolio_changes.c.kind != "portfolio_created")).scalar_one()
        version = conn.execute(sa.select(portfolios.c.version).where(portfolios.c.id == pid)).scalar_one()
    per_write = Counter(quantity for _, quantity in rows)
    # All or nothing: an import has all its rows, a single write its one row.
    assert all(n == (IMPORT_ROWS if q > 0 else 1) for q, n in per_write.items()), per_write
    # Each stored write has its change-log row and its version bump, and no change lacks its write.
    assert added == changes == len(per_write) == version - version_before
    # Every write the server acknowledged is stored (the kill can only lose unacknowledged ones).
    assert set(writers.acked_ids) <= {i for i, _ in rows}
    assert len(writers.acked_ids) >= 2 * IMPORT_ROWS

    # What is served next, from the cache or not, counts exactly the stored positions.
    text, _hit = service.portfolio_factor_exposures_json(engine, pid)
    document = service.get_portfolio_factor_exposures(engine, pid)
    assert document["positions"] == len(rows) and f'"positions":{len(rows)},' in text
