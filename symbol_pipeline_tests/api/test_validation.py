"""Bad input at the edge, class by class, through a real client against uvicorn on PostgreSQL: each
is a 422 naming the field and the rule (a 429 past the onboarding cap), never a 5xx, and writes
nothing. The schema-driven tests (test_schema_fuzz.py) look for more of each class; these pin them."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import sqlalchemy as sa

from symbol_pipeline.api import deps
from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.api.fields import MAX_SCENARIOS
from symbol_pipeline.api.routes import admin as admin_routes
from symbol_pipeline.config import get_settings
from symbol_pipeline.runs.requests import DailyBatchRequest
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.onboarding import queue_rows
from symbol_pipeline.storage.portfolio_schema import portfolios, positions
from symbol_pipeline_tests.api.conftest import served
from symbol_pipeline_tests.portfolio_data import seed_etf_history, seed_symbols

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(pg_engine, pg_url, tmp_path, monkeypatch):
    seed_symbols(pg_engine, {"AAA": {"market_beta": 1.1, "ir_beta": 0.7}}, {"AAA": 10.0})
    seed_symbols(pg_engine, {"BAD": {}}, {}, status="error")
    seed_etf_history(pg_engine)
    alice = svc.create_user(pg_engine, "alice")
    svc.create_user(pg_engine, "root", is_admin=True)
    keys = {n: svc.issue_api_key(pg_engine, n) for n in ("alice", "root")}
    pf = svc.create_portfolio(pg_engine, alice.id, "alice main", 100_000)
    svc.add_position(pg_engine, pf["id"], "AAA", 1000)
    svc.add_position(pg_engine, pf["id"], "BAD", 10, entry_price=5.0)
    submitted = []
    monkeypatch.setattr(admin_routes, "request_daily_symbol_batch",
                        lambda engine, data_dir, day, by: submitted.append(day) or DailyBatchRequest(day or dt.date(2024, 6, 28), 1))
    # The window of the tests' sessions (conftest's SYMBOL_PIPELINE_PARTITIONS_START), as api_settings reads it.
    settings = ApiSettings(database_url=pg_url, data_dir=tmp_path, onboarding_daily_cap=3,
                           window_rule=get_settings().window_rule)
    with served(create_app(settings)) as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client, {n: {"Authorization": f"Bearer {k}"} for n, k in keys.items()}, pf, pg_engine, submitted


def _rows(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in (portfolios, positions))


def _post(client, path: str, raw: str, auth) -> httpx.Response:
    return client.post(path, content=raw.encode("utf-8", "surrogatepass"), headers={**auth, **JSON})


def _field_error(response: httpx.Response, field: str) -> str:
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    named = [e for e in errors if e["loc"][-1] == field]
    assert named, errors
    return named[0]["msg"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", str(10 ** 400), "1e308", "-1e308"])
def test_non_finite_huge_and_out_of_range_numbers_are_422_and_write_nothing(api, literal):
    client, auth, pf, engine, _ = api
    before = _rows(engine)
    for path, body, field in [
        ("/api/v1/portfolios", f'{{"name": "x", "equity": {literal}}}', "equity"),
        ("/api/v1/positions", f'{{"portfolio_id": "{pf["id"]}", "symbol": "AAA", "quantity": {literal}}}', "quantity"),
        ("/api/v1/positions",
         f'{{"portfolio_id": "{pf["id"]}", "symbol": "AAA", "quantity": 1, "entry_price": {literal}}}', "entry_price"),
    ]:
        message = _field_error(_post(client, path, body, auth["alice"]), field)
        assert "finite" in message or "within" in message or "greater than" in message
    assert _rows(engine) == before


def test_quantity_bounds_are_documented_and_held(api):
    client, auth, pf, engine, _ = api
    ok = _post(client, "/api/v1/positions", f'{{"portfolio_id": "{pf["id"]}", "symbol": "AAA", "quantity": -1e12}}',
               auth["alice"])
    assert ok.status_code == 201, ok.text
    over = _post(client, "/api/v1/positions", f'{{"portfolio_id": "{pf["id"]}", "symbol": "AAA", "quantity": 1.5e12}}',
                 auth["alice"])
    assert "1e+12" in _field_error(over, "quantity")


@pytest.mark.parametrize("text", ["a\\u0000b", "tab\\there", "bell\\u0007", "\\ud800", "x\\udfffy", "\\u009b"])
def test_control_characters_and_unpaired_surrogates_are_422(api, text):
    client, auth, _, engine, _ = api
    reply = _post(client, "/api/v1/admin/symbols/reject", f'{{"symbols": ["BAD"], "reason": "{text}"}}', auth["root"])
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["loc"][-1] == "reason"
    reply.content.decode("utf-8")  # the 422 itself is valid UTF-8, whatever the input was


@pytest.mark.parametrize("text", ["a\\u0000b", "bell\\u0007"])
def test_control_characters_in_a_portfolio_name_are_422(api, text):
    client, auth, _, engine, _ = api
    before = _rows(engine)
    _field_error(_post(client, "/api/v1/portfolios", f'{{"name": "{text}", "equity": 1}}', auth["alice"]), "name")
    assert _rows(engine) == before


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1677-01-01", "2999-01-01"])
def test_unrepresentable_dates_in_a_symbols_query_are_422(api, day):
    client, auth, _, _, _ = api
    message = _field_error(client.get(f"/api/v1/symbols/AAA/factors?date={day}", headers=auth["alice"]), "date")
    assert "today" in message or "1995-01-03, the exchange calendar's first session" in message


@pytest.mark.parametrize("query", ["date=0001-01-01", "date=1677-01-01"])
def test_unrepresentable_dates_in_analytics_queries_are_4xx(api, query):
    client, auth, pf, _, _ = api
    for path in (f"stress-test?{query}", f"factor-exposures?{query.replace('date', 'as_of')}"):
        reply = client.get(f"/api/v1/analytics/portfolio/{pf['id']}/{path}", headers=auth["alice"])
        assert 400 <= reply.status_code < 500, (path, reply.status_code, reply.text[:200])


@pytest.mark.parametrize("day, rule", [
    ("2024-12-25", "not an NYSE trading session"), ("2024-06-29", "not an NYSE trading session"),
    ("2020-01-02", "before the first date partition"), ("0001-01-01", "before the first date partition"),
    ("2099-01-02", "after the latest completed session"), ("9999-12-31", "after the latest completed session"),
])
def test_the_admin_run_refuses_non_sessions_and_out_of_range_dates(api, day, rule):
    client, auth, _, _, submitted = api
    reply = client.post("/api/v1/admin/symbol-batch/run", json={"date": day}, headers=auth["root"])
    assert rule in _field_error(reply, "date")
    assert submitted == []
    assert client.post("/api/v1/admin/symbol-batch/run", json={"date": "2024-06-28"},
                       headers=auth["root"]).status_code == 202


def test_scenarios_are_deduplicated_and_capped(api):
    client, auth, pf, _, _ = api
    url = f"/api/v1/analytics/portfolio/{pf['id']}/stress-test"
    once = client.get(url, params=[("scenario", "market_down_5")], headers=auth["alice"])
    twice = client.get(url, params=[("scenario", "market_down_5")] * 50, headers=auth["alice"])
    assert once.status_code == twice.status_code == 200, twice.text
    assert twice.json()["scenarios"] == once.json()["scenarios"]
    many = client.get(url, params=[("scenario", f"s{i}") for i in range(MAX_SCENARIOS + 1)], headers=auth["alice"])
    assert f"at most {MAX_SCENARIOS} distinct scenarios" in _field_error(many, "scenario")


def test_a_users_onboarding_requests_are_capped_with_a_429(api):
    client, auth, pf, engine, _ = api
    for symbol in ("NEW1", "NEW2", "NEW3"):
        reply = client.post("/api/v1/positions", json={"portfolio_id": pf["id"], "symbol": symbol, "quantity": 1},
                            headers=auth["alice"])
        assert reply.status_code == 201 and reply.json()["pending_symbols"] == [symbol]
    before = _rows(engine)
    over = client.post("/api/v1/positions", json={"portfolio_id": pf["id"], "symbol": "NEW4", "quantity": 1},
                       headers=auth["alice"])
    assert over.status_code == 429 and "at most 3 new symbols a day" in over.json()["detail"]
    assert _rows(engine) == before and "NEW4" not in {r["symbol"] for r in queue_rows(engine)}
    known = client.post("/api/v1/positions", json={"portfolio_id": pf["id"], "symbol": "AAA", "quantity": 1},
                        headers=auth["alice"])
    assert known.status_code == 201  # a known symbol costs nothing
    assert {r["priority"] for r in queue_rows(engine)} == {1}  # users' requests below operators'


def test_admins_list_retry_and_reject_symbols(api):
    client, auth, _, _, _ = api
    assert client.get("/api/v1/admin/symbols", headers=auth["alice"]).status_code == 403
    listed = client.get("/api/v1/admin/symbols", params={"status": "error"}, headers=auth["root"]).json()
    assert [r["symbol"] for r in listed] == ["BAD"]
    retried = client.post("/api/v1/admin/symbols/retry", json={"symbols": ["bad", "AAA"]}, headers=auth["root"])
    assert retried.json() == {"requeued": ["BAD"], "not_retried": ["AAA"]}
    rejected = client.post("/api/v1/admin/symbols/reject", json={"symbols": ["BAD"], "reason": "not listed"},
                           headers=auth["root"])
    assert rejected.json() == {"rejected": ["BAD"], "not_rejected": []}
    status = client.get("/api/v1/symbols/BAD/status", headers=auth["alice"]).json()
    assert status["status"] == "error" and "not listed" in status["reason"]
    bad = client.post("/api/v1/admin/symbols/retry", json={"symbols": ["A|B"]}, headers=auth["root"])
    assert "may only hold letters" in _field_error(bad, 0)


def test_exposures_name_the_unavailable_symbols(api):
    client, auth, pf, _, _ = api
    doc = client.get(f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures", headers=auth["alice"]).json()
    assert doc["unavailable_symbols"] == {"BAD": "error"}


def test_the_openapi_schema_declares_the_bearer_scheme(api):
    client, _, _, _, _ = api
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": deps.bearer.model.description}
    assert {"HTTPBearer": []} in schema["paths"]["/api/v1/portfolios"]["post"]["security"]
    reply = client.get("/api/v1/portfolios")
    assert reply.status_code == 401 and reply.headers["www-authenticate"] == "Bearer"
