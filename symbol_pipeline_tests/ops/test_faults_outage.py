"""Fault: the API's database connections are dropped, or the database refuses connections, while
`symbol-pipeline serve` runs (issue 18 item 5).

Every outage is staged on this test's own database (`pg_terminate_backend` on the server's
backends, `ALTER DATABASE ... ALLOW_CONNECTIONS false`), never on the shared server. Dropped
connections are replaced before use (the pool pings them), so the next requests succeed; while
the database refuses connections every request is a 503 with `Retry-After` naming the outage;
service resumes without a restart; an import cut in the middle of its transaction writes nothing.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from symbol_pipeline.services import portfolio as service
from symbol_pipeline.storage.portfolio_schema import portfolio_changes, portfolios, positions
from symbol_pipeline.storage.schema import symbol_onboarding_queue, symbol_universe
from symbol_pipeline_tests.databases import PG_ADMIN_URL
from symbol_pipeline_tests.serve_process import APP_NAME, Racers

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BURST = 16


@pytest.fixture(scope="module")
def outage_api(pg_api_server):
    """The session's PostgreSQL server (conftest), a user of its own with one portfolio, 16 clients."""
    engine, database = pg_api_server.engine, pg_api_server.database
    user = service.create_user(engine, "outage")
    headers = {"Authorization": f"Bearer {service.issue_api_key(engine, 'outage')}"}
    pid = service.create_portfolio(engine, user.id, "through outages", 1_000_000)["id"]
    service.add_position(engine, pid, "AAA", 100)
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    racers = Racers(pg_api_server.base, BURST, headers)
    try:
        yield racers, engine, admin, database, pid
    finally:
        racers.close()
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def _burst(racers: Racers, pid: str) -> list:
    """Reads that take connections from both of the server's pools (transactions and autocommit)."""
    paths = [f"/api/v1/portfolios/{pid}", f"/api/v1/portfolios/{pid}/positions",
             f"/api/v1/analytics/portfolio/{pid}/factor-exposures", "/api/v1/portfolios"]
    return racers.race([("GET", paths[i % len(paths)], {}) for i in range(BURST)])


def _terminate_server_backends(admin: sa.Engine, database: str) -> int:
    query = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d AND application_name = :a")
    with admin.connect() as conn:
        killed = len(conn.execute(sa.text(query), {"d": database, "a": APP_NAME}).all())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND application_name = :a"),
                {"d": database, "a": APP_NAME}).scalar_one():
            time.sleep(0.05)
    return killed


def test_connections_dropped_by_the_database_are_replaced_before_use(outage_api):
    racers, _, admin, database, pid = outage_api
    for _ in range(3):
        assert {r.status_code for r in _burst(racers, pid)} == {200}  # the pools hold connections now
        assert _terminate_server_backends(admin, database) > 0
        answers = _burst(racers, pid)
        assert [r.status_code for r in answers] == [200] * BURST, [r.text[:200] for r in answers]


def test_an_outage_is_a_503_naming_it_and_service_resumes_without_a_restart(outage_api):
    racers, _, admin, database, pid = outage_api
    assert {r.status_code for r in _burst(racers, pid)} == {200}
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
    try:
        _terminate_server_backends(admin, database)
        for _ in range(2):
            answers = _burst(racers, pid)
            assert [r.status_code for r in answers] == [503] * BURST, [r.text[:200] for r in answers]
            for answer in answers:
                assert int(answer.headers["Retry-After"]) > 0
                assert answer.json()["detail"].startswith("database unavailable"), answer.text
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
    answers = _burst(racers, pid)
    assert [r.status_code for r in answers] == [200] * BURST, [r.text[:200] for r in answers]


def test_an_import_cut_by_a_fault_writes_nothing(outage_api):
    """The import has inserted its positions and waits to queue a new symbol (another transaction
    holds that symbol's universe row) when its connection is terminated."""
    racers, engine, admin, database, pid = outage_api
    with engine.connect() as conn:
        version = conn.execute(sa.select(portfolios.c.version).where(portfolios.c.id == pid)).scalar_one()
        before = conn.execute(sa.select(sa.func.count()).where(positions.c.portfolio_id == pid)).scalar_one()
    rows = [{"symbol": "AAA", "quantity": i + 1} for i in range(50)] + [{"symbol": "CUTNEW", "quantity": 1}]
    with engine.connect() as holder:
        holder.execute(symbol_universe.insert().values(symbol="CUTNEW", status="pending"))  # not committed
        client = racers.clients[0]
        started = racers.pool.submit(client.post, f"/api/v1/portfolios/{pid}/positions/import", json=rows)
        waiting = []
        deadline = time.monotonic() + 30
        with admin.connect() as conn:
            while not waiting and time.monotonic() < deadline:
                waiting = conn.execute(sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :d AND application_name = :a "
                    "AND wait_event_type = 'Lock'"), {"d": database, "a": APP_NAME}).scalars().all()
                time.sleep(0.05)
            assert waiting, "the import never waited on the held symbol"
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": waiting[0]})
        answer = started.result(30)
        holder.rollback()
    assert answer.status_code == 503 and "Retry-After" in answer.headers, answer.text
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(positions.c.portfolio_id == pid)).scalar_one() == before
        assert conn.execute(sa.select(portfolios.c.version).where(portfolios.c.id == pid)).scalar_one() == version
        assert conn.execute(sa.select(sa.func.count()).where(
            portfolio_changes.c.portfolio_id == pid, portfolio_changes.c.kind == "positions_added")).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).where(
            symbol_onboarding_queue.c.symbol == "CUTNEW")).scalar_one() == 0
    # And the next import, on a new connection, goes through.
    answer = racers.clients[0].post(f"/api/v1/portfolios/{pid}/positions/import", json=rows)
    assert answer.status_code == 201, answer.text
