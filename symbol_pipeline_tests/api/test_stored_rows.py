"""A portfolio can never be put into a state where a read fails: rows the rules now refuse (a year-1
date, a symbol such as `=CMD`), written by an older version and not repaired by a migration, are
read without error by `GET /portfolios/{id}/positions`, the exposures and `positions list`. Before
issue 18 a year-1 entry date made every later read a 500 (pandas OutOfBoundsDatetime)."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import sqlalchemy as sa

from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.cli.main import main
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.portfolio_schema import portfolio_equity, position_quantities, positions
from symbol_pipeline_tests.api.conftest import served


def _store_unruly_rows(engine: sa.Engine, pid: str) -> None:
    """What an import stored before the rules: a position from year 1, one in a formula 'symbol',
    and an equity from 1900, written past the service as an old version would have."""
    with engine.begin() as conn:
        for symbol, entry in (("AAA", dt.date(1, 1, 1)), ("=CMD", dt.date(2024, 6, 3))):
            position = conn.execute(positions.insert().values(portfolio_id=pid, symbol=symbol, quantity=5,
                                                              entry_date=entry)).inserted_primary_key[0]
            conn.execute(position_quantities.insert().values(position_id=position, effective_date=entry, quantity=5))
        conn.execute(portfolio_equity.insert().values(portfolio_id=pid, effective_date=dt.date(1900, 1, 1),
                                                      equity=50_000))


def test_rows_the_rules_refuse_are_read_without_error(engine, tmp_path, capsys):
    url = engine.url.render_as_string(hide_password=False)
    alice = svc.create_user(engine, "alice")
    key = svc.issue_api_key(engine, "alice")
    pf = svc.create_portfolio(engine, alice.id, "old", 100_000)
    _store_unruly_rows(engine, pf["id"])
    auth = {"Authorization": f"Bearer {key}"}
    app = create_app(ApiSettings(database_url=url, data_dir=tmp_path))
    with served(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        listed = client.get(f"/api/v1/portfolios/{pf['id']}/positions", headers=auth)
        assert listed.status_code == 200, listed.text
        assert {p["symbol"]: p["quantity_date"] for p in listed.json()} == {"AAA": "0001-01-01", "=CMD": "2024-06-03"}
        for path in (f"/api/v1/portfolios/{pf['id']}/positions?as_of=1995-01-03", f"/api/v1/portfolios/{pf['id']}",
                     f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures",
                     f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures/history",
                     f"/api/v1/analytics/portfolio/{pf['id']}/stress-test"):
            reply = client.get(path, headers=auth)
            assert reply.status_code < 500, (path, reply.status_code, reply.text[:300])
    assert main(["positions", "list", pf["id"], "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert {p["symbol"] for p in json.loads(out)} == {"AAA", "=CMD"}


def test_a_user_named_before_the_rules_can_still_queue_symbols(engine, tmp_path):
    """Names of 61 to 64 characters were accepted before the rules; `api:<name>` then overflowed the
    queue's 64-character requested_by, a 500 on PostgreSQL for every new symbol."""
    name = "n" * 64
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (name, is_admin) VALUES (:n, false)"), {"n": name})
    user = svc.get_user(engine, name)
    key = svc.issue_api_key(engine, name)
    pf = svc.create_portfolio(engine, user.id, "p", 1000)
    app = create_app(ApiSettings(database_url=engine.url.render_as_string(hide_password=False), data_dir=tmp_path))
    with served(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        reply = client.post("/api/v1/positions", json={"portfolio_id": pf["id"], "symbol": "NEWCO", "quantity": 1},
                            headers={"Authorization": f"Bearer {key}"})
    assert reply.status_code == 201 and reply.json()["pending_symbols"] == ["NEWCO"], reply.text
