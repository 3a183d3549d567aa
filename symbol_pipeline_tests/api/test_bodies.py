"""The JSON bodies of the API, byte for byte, against bodies recorded before the routers got their
prefixes and response models (golden_bodies.json): key order, number formatting, nulls and error
bodies included. Only ids, clock times and today's date are masked.

To record again after a deliberate change: `SYMBOL_PIPELINE_RECORD_BODIES=1 pytest this file`,
then review the diff of golden_bodies.json."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import httpx
import pytest

from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.api.routes import admin as admin_routes
from symbol_pipeline.config import get_settings
from symbol_pipeline.runs.requests import DailyBatchRequest
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline_tests.api.conftest import served
from symbol_pipeline_tests.portfolio_data import CALC_DATE, seed_etf_history, seed_symbols

GOLDEN = Path(__file__).with_name("golden_bodies.json")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CLOCK = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")


def _masked(text: str) -> str:
    text = _UUID.sub("<uuid>", text)
    text = _CLOCK.sub("<time>", text)
    return text.replace(dt.date.today().isoformat(), "<today>")


def _calls(client: httpx.Client, auth: dict, root: dict):
    """(name, response) for every endpoint with a JSON body, in an order that builds what it reads."""
    created = client.post("/api/v1/portfolios", json={"name": " main ", "equity": 100000}, headers=auth)
    yield "create portfolio", created
    pid = created.json()["id"]
    yield "list portfolios", client.get("/api/v1/portfolios", headers=auth)
    yield "set equity", client.post(f"/api/v1/portfolios/{pid}/equity",
                                    json={"equity": 120000.5, "effective_date": "2024-06-03"}, headers=auth)
    yield "get portfolio", client.get(f"/api/v1/portfolios/{pid}", headers=auth)
    added = client.post("/api/v1/positions", json={"portfolio_id": pid, "symbol": "AAA", "quantity": 10,
                                                   "entry_price": 10.5, "entry_date": "2024-06-03"}, headers=auth)
    yield "add position", added
    position = added.json()["position"]["id"]
    yield "add pending symbol", client.post("/api/v1/positions", json={
        "portfolio_id": pid, "symbol": "NEWCO", "quantity": -3, "entry_date": "2024-06-04",
        "investment_class": "Hedge"}, headers=auth)
    yield "change position", client.patch(f"/api/v1/positions/{position}",
                                          json={"quantity": 15, "effective_date": "2024-06-10"}, headers=auth)
    yield "get position", client.get(f"/api/v1/positions/{position}", headers=auth)
    yield "positions as of", client.get(f"/api/v1/portfolios/{pid}/positions?as_of=2024-06-12&limit=1", headers=auth)
    yield "import", client.post(f"/api/v1/portfolios/{pid}/positions/import", headers=auth, json=[
        {"symbol": "AAA", "quantity": 2.5, "entry_date": "2024-06-05"}, {"symbol": "ZZZ", "quantity": 1,
                                                                         "entry_date": "2024-06-05"}])
    yield "close position", client.post(f"/api/v1/positions/{position}/close",
                                        json={"exit_date": "2024-06-20", "exit_price": 11}, headers=auth)
    yield "symbol status", client.get("/api/v1/symbols/AAA/status", headers=auth)
    yield "pending symbol status", client.get("/api/v1/symbols/NEWCO/status", headers=auth)
    yield "symbol factors", client.get(f"/api/v1/symbols/AAA/factors?date={CALC_DATE}", headers=auth)
    yield "stress test", client.get(f"/api/v1/analytics/portfolio/{pid}/stress-test?date={CALC_DATE}"
                                    "&scenario=market_crash_35&scenario=rates_up_50bp", headers=auth)
    yield "queue", client.get("/api/v1/admin/symbols?status=queued&status=error", headers=root)
    yield "retry", client.post("/api/v1/admin/symbols/retry", json={"symbols": ["BAD", "AAA"]}, headers=root)
    yield "reject", client.post("/api/v1/admin/symbols/reject", json={"symbols": ["ZZZ", "AAA"],
                                                                      "reason": "no such company"}, headers=root)
    yield "batch run", client.post("/api/v1/admin/symbol-batch/run", json={"date": "2024-06-28"}, headers=root)
    yield "batch status", client.get("/api/v1/admin/symbol-batch/status", headers=root)
    yield "not found", client.get("/api/v1/portfolios/nope", headers=auth)
    yield "unknown symbol", client.get("/api/v1/symbols/QQQQ/status", headers=auth)
    yield "bad body", client.post("/api/v1/portfolios", json={"name": "", "equity": 0}, headers=auth)
    yield "delete", client.delete(f"/api/v1/portfolios/{pid}", headers=auth)


@pytest.fixture
def api(tmp_path, monkeypatch):
    # The window of the tests' sessions (conftest's SYMBOL_PIPELINE_PARTITIONS_START): a fixed one.
    app = create_app(ApiSettings(database_url=f"sqlite:///{tmp_path / 'api.sqlite'}", data_dir=tmp_path,
                                 window_rule=get_settings().window_rule))
    engine = app.state.engine
    seed_symbols(engine, {"AAA": {"market_beta": 1.1, "ir_beta": 0.7}}, {"AAA": 10.0})
    seed_symbols(engine, {"BAD": {}}, {}, status="error")
    seed_etf_history(engine)
    alice = svc.create_user(engine, "alice")
    svc.create_user(engine, "root", is_admin=True)
    keys = {name: {"Authorization": f"Bearer {svc.issue_api_key(engine, name)}"} for name in ("alice", "root")}
    monkeypatch.setattr(admin_routes, "request_daily_symbol_batch",
                        lambda engine, data_dir, day, by: DailyBatchRequest(day, 1))
    monkeypatch.setattr(admin_routes, "daily_batch_status", lambda data_dir: {
        "status": "SUCCESS", "run_id": "r1", "request_id": "1", "started": 1.5, "ended": None,
        "range_start": "2024-06-28|AAA", "range_end": "2024-06-28|ZZZ", "counts": {"symbols": 3}})
    with served(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client, keys, alice


def test_the_json_bodies_are_those_recorded(api):
    client, keys, _ = api
    bodies = {name: {"status": reply.status_code, "body": _masked(reply.text)}
              for name, reply in _calls(client, keys["alice"], keys["root"])}
    if os.environ.get("SYMBOL_PIPELINE_RECORD_BODIES"):
        GOLDEN.write_text(json.dumps(bodies, indent=1, ensure_ascii=False) + "\n")
    recorded = json.loads(GOLDEN.read_text())
    assert list(bodies) == list(recorded)
    for name, reply in bodies.items():
        assert reply == recorded[name], name
