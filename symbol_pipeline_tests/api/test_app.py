"""The HTTP API through a real client against uvicorn on PostgreSQL: auth, ownership and bad input."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import sqlalchemy as sa

from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.api.routes import admin as app_module
from symbol_pipeline.config import get_settings
from symbol_pipeline.runs.requests import DaemonNotServingError, DailyBatchRequest, OpenRequestError, RunRequestRow
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.portfolio_schema import portfolio_changes, portfolios, positions
from symbol_pipeline_tests.api.conftest import auth_header as _auth
from symbol_pipeline_tests.api.conftest import served
from symbol_pipeline_tests.portfolio_data import CALC_DATE, seed_etf_history, seed_symbols

pytestmark = [pytest.mark.postgres, pytest.mark.slow]



@pytest.fixture
def api(pg_engine, pg_url, tmp_path):
    seed_symbols(pg_engine, {"AAA": {"market_beta": 1.1, "ir_beta": 0.7}}, {"AAA": 10.0})
    seed_symbols(pg_engine, {"BAD": {}}, {}, status="error")
    seed_etf_history(pg_engine)
    alice = svc.create_user(pg_engine, "alice")
    svc.create_user(pg_engine, "bob")
    svc.create_user(pg_engine, "root", is_admin=True)
    keys = {n: svc.issue_api_key(pg_engine, n) for n in ("alice", "bob", "root")}
    pf = svc.create_portfolio(pg_engine, alice.id, "alice main", 100_000)
    svc.add_position(pg_engine, pf["id"], "AAA", 1000)
    # The window of the tests' sessions (conftest's SYMBOL_PIPELINE_PARTITIONS_START), as api_settings reads it.
    settings = ApiSettings(database_url=pg_url, data_dir=tmp_path, window_rule=get_settings().window_rule)
    with served(create_app(settings)) as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client, keys, pf, pg_engine



def _counts(engine):
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                     for t in (portfolios, positions, portfolio_changes))


def test_every_endpoint_needs_a_key(api):
    client, _, pf, _ = api
    calls = [("GET", "/api/v1/symbols/AAA/status"), ("GET", "/api/v1/symbols/AAA/factors"),
             ("POST", "/api/v1/positions"), ("POST", "/api/v1/portfolios"), ("GET", "/api/v1/portfolios"),
             ("GET", f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures"),
             ("GET", f"/api/v1/analytics/portfolio/{pf['id']}/stress-test"),
             ("POST", "/api/v1/admin/symbol-batch/run"), ("GET", "/api/v1/admin/symbol-batch/status")]
    for method, path in calls:
        assert client.request(method, path).status_code == 401, path
        assert client.request(method, path, headers=_auth("sp_wrong")).status_code == 401, path


def test_another_users_portfolio_is_404(api):
    client, keys, pf, engine = api
    bob = _auth(keys["bob"])
    before = _counts(engine)
    for path in (f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures",
                 f"/api/v1/analytics/portfolio/{pf['id']}/stress-test",
                 "/api/v1/analytics/portfolio/not-a-uuid/factor-exposures"):
        assert client.get(path, headers=bob).status_code == 404
    r = client.post("/api/v1/positions", headers=bob, json={"portfolio_id": pf["id"], "symbol": "AAA", "quantity": 1})
    assert r.status_code == 404
    assert client.get("/api/v1/portfolios", headers=bob).json() == []
    assert _counts(engine) == before


def test_admin_endpoints(api, monkeypatch):
    """Admin only; the request goes to runs.requests (faked here: tests/runs/test_requests.py holds its answers)."""
    launched = []
    monkeypatch.setattr(app_module, "request_daily_symbol_batch", lambda engine, data_dir, date, by: launched.append(date)
                        or DailyBatchRequest(date, 1))
    monkeypatch.setattr(app_module, "daily_batch_status", lambda data_dir: {"status": "SUCCESS", "run_id": "r1"})
    client, keys, _, _ = api
    for path, method in (("/api/v1/admin/symbol-batch/run", "POST"), ("/api/v1/admin/symbol-batch/status", "GET")):
        assert client.request(method, path, headers=_auth(keys["alice"])).status_code == 403
    assert launched == []
    r = client.post("/api/v1/admin/symbol-batch/run", headers=_auth(keys["root"]), json={"date": "2024-06-28"})
    assert r.status_code == 202 and r.json()["status"] == "requested"
    assert r.json() == {"status": "requested", "date": "2024-06-28", "request_id": 1, "run_id": None}
    assert [str(d) for d in launched] == ["2024-06-28"]
    r = client.get("/api/v1/admin/symbol-batch/status", headers=_auth(keys["root"]))
    assert r.status_code == 200 and r.json() == {"status": "SUCCESS", "run_id": "r1"}


def _refuse(error: Exception):
    def request(engine, data_dir, date, by):
        raise error
    return request


def test_the_daily_requests_domain_errors_are_503_and_409(api, monkeypatch):
    """runs.requests raises; api/errors.py answers: no daemon is a 503, a daily run of the date
    already requested or running is a 409 naming the request (none for the schedule's) and its run."""
    client, keys, _, _ = api
    root = _auth(keys["root"])
    day = dt.date(2024, 6, 28)
    monkeypatch.setattr(app_module, "request_daily_symbol_batch", _refuse(DaemonNotServingError(["SENSOR"])))
    r = client.post("/api/v1/admin/symbol-batch/run", headers=root, json={"date": str(day)})
    assert r.status_code == 503 and "dagster-daemon run" in r.json()["detail"] and set(r.json()) == {"detail"}
    for row_id, runs, status, answer in ((7, [], "requested", (7, None)), (0, ["sched"], "running", (None, "sched"))):
        row = RunRequestRow(id=row_id, kind="daily", first_date=day, last_date=day, symbols=None,
                            requested_by="x", status=status, run_ids=runs, message=None)
        monkeypatch.setattr(app_module, "request_daily_symbol_batch", _refuse(OpenRequestError(row)))
        r = client.post("/api/v1/admin/symbol-batch/run", headers=root, json={"date": str(day)})
        assert r.status_code == 409 and r.json() == {
            "detail": f"a daily run for 2024-06-28 is already {status}", "request_id": answer[0], "run_id": answer[1]}


def test_exposures_and_stress_for_the_owner(api):
    client, keys, pf, _ = api
    h = _auth(keys["alice"])
    r = client.get(f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures", headers=h)
    assert r.status_code == 200 and r.headers["x-cache"] == "miss"
    assert r.json()["factors"]["market_beta"]["beta"] == pytest.approx(0.1 * 1.1)
    assert client.get(f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures", headers=h).headers["x-cache"] == "hit"
    s = client.get(f"/api/v1/analytics/portfolio/{pf['id']}/stress-test", headers=h,
                   params={"scenario": ["rates_up_100bp"]})
    assert s.status_code == 200
    rates = s.json()["scenarios"][0]["models"]["rates"]["direct_pnl"]
    assert rates == pytest.approx(0.1 * 0.7 * -0.165 * 100_000)
    assert client.get(f"/api/v1/analytics/portfolio/{pf['id']}/stress-test", headers=h,
                      params={"scenario": ["nope"]}).status_code == 422
    assert "/api/v1/positions" in client.get("/openapi.json").json()["paths"]


def test_symbols_endpoints(api):
    client, keys, _, _ = api
    h = _auth(keys["alice"])
    st = client.get("/api/v1/symbols/aaa/status", headers=h).json()
    assert st["status"] == "ready" and st["latest_factors_date"] == CALC_DATE.isoformat()
    assert st["stale"] is False
    assert client.get("/api/v1/symbols/BAD/status", headers=h).json()["status"] == "error"
    assert client.get("/api/v1/symbols/NOPE/status", headers=h).status_code == 404
    assert client.get("/api/v1/symbols/A%7CB/status", headers=h).status_code == 422
    f = client.get("/api/v1/symbols/AAA/factors", headers=h, params={"date": CALC_DATE.isoformat()}).json()
    assert len(f["factors"]) == 12 and f["factors"][0]["factor"] == "market_beta"
    assert {"r_squared", "observations", "quality"} <= set(f["factors"][0])
    assert client.get("/api/v1/symbols/AAA/factors", headers=h, params={"date": "junk"}).status_code == 422


def test_positions_and_pending_symbols(api):
    client, keys, pf, _ = api
    h = _auth(keys["alice"])
    r = client.post("/api/v1/positions", headers=h,
                    json={"portfolio_id": pf["id"], "symbol": "newco", "quantity": -5, "entry_price": 2.5})
    assert r.status_code == 201 and r.json()["pending_symbols"] == ["NEWCO"]
    assert r.json()["position"]["quantity"] == -5


@pytest.mark.parametrize("body", [
    {"symbol": "AAA", "quantity": 1, "colour": "red"},          # unknown field
    {"symbol": "AAA", "quantity": "1"},                           # wrong type
    {"symbol": 123, "quantity": 1},
    {"symbol": "AAA", "quantity": 0},
    {"symbol": "A" * 50, "quantity": 1},                          # 50 characters
    {"symbol": "AB|C", "quantity": 1},
    {"symbol": "AB,C", "quantity": 1},
    {"symbol": "AAA", "quantity": 1, "entry_price": -1},
    {"symbol": "AAA", "quantity": 1, "entry_date": "soon"},
    {"quantity": 1},
])
def test_bad_position_input_is_422_and_writes_nothing(api, body):
    client, keys, pf, engine = api
    before = _counts(engine)
    r = client.post("/api/v1/positions", headers=_auth(keys["alice"]), json={"portfolio_id": pf["id"], **body})
    assert r.status_code == 422 and r.json()["detail"]
    assert _counts(engine) == before


@pytest.mark.parametrize("body", [
    {"name": "x", "equity": -100}, {"name": "x", "equity": 0}, {"name": "x", "equity": "lots"},
    {"name": "x", "equity": 10, "currency": "EUR"}, {"name": "x", "equity": 10, "extra": 1}, {"equity": 10},
])
def test_bad_portfolio_input_is_422_and_writes_nothing(api, body):
    client, keys, _, engine = api
    before = _counts(engine)
    r = client.post("/api/v1/portfolios", headers=_auth(keys["alice"]), json=body)
    assert r.status_code == 422 and r.json()["detail"]
    assert _counts(engine) == before
    ok = client.post("/api/v1/portfolios", headers=_auth(keys["alice"]), json={"name": "ok", "equity": 5})
    assert ok.status_code == 201 and ok.json()["currency"] == "USD"
