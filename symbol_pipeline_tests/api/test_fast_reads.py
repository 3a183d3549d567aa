"""The analytics GETs answered below FastAPI (api/fast_reads.py) answer what FastAPI's routes answer:
the same bytes, status and `X-Cache`, hit or miss; whatever the fast path leaves alone reaches the
routes, and errors are theirs."""

from __future__ import annotations

import httpx
import pytest

from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.api.routes import analytics, risk
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline_tests.api.conftest import auth_header, served
from symbol_pipeline_tests.portfolio_data import CALC_DATE, seed_etf_history, seed_symbols
from symbol_pipeline_tests.services.portfolio.test_risk import AAA_BETAS, AAA_S2, ENTRY, set_residuals

pytestmark = pytest.mark.postgres
ENDPOINTS = {"factor-exposures": "as_of", "risk": "as_of", "stress-test": "date", "factor-exposures/history": "end"}


@pytest.fixture
def api(pg_engine, pg_url, tmp_path, monkeypatch):
    seed_symbols(pg_engine, {"AAA": AAA_BETAS}, {"AAA": 10.0})
    set_residuals(pg_engine, "AAA", AAA_S2)
    seed_etf_history(pg_engine)
    alice, _ = svc.create_user(pg_engine, "alice"), svc.create_user(pg_engine, "bob")
    keys = {n: svc.issue_api_key(pg_engine, n) for n in ("alice", "bob")}
    pf = svc.create_portfolio(pg_engine, alice.id, "main", 100_000)
    svc.add_position(pg_engine, pf["id"], "AAA", 1000, entry_date=ENTRY)
    by_fastapi: list[str] = []  # the routes answer through cached_response; the fast path does not
    answer = analytics.cached_response
    for module in (analytics, risk):
        monkeypatch.setattr(module, "cached_response", lambda *a, **k: by_fastapi.append(a[0]) or answer(*a, **k))
    with served(create_app(ApiSettings(database_url=pg_url, data_dir=tmp_path))) as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client, keys, pf, by_fastapi


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("dated", [False, True])
def test_hit_and_miss_are_the_routes_answers(api, endpoint, dated):
    client, keys, pf, by_fastapi = api
    h = auth_header(keys["alice"])
    path = f"{analytics.ANALYTICS_PREFIX}/{pf['id']}/{endpoint}" + (f"?{ENDPOINTS[endpoint]}={CALC_DATE}" if dated else "")
    routed = path + ("&" if dated else "?") + "via=fastapi"  # a parameter the fast path leaves to FastAPI
    miss = client.get(path, headers=h)
    assert miss.status_code == 200 and miss.headers["x-cache"] == "miss" and by_fastapi == [], miss.text
    hit = client.get(path, headers=h)
    assert hit.headers["x-cache"] == "hit" and hit.content == miss.content and by_fastapi == []
    by_routes = client.get(routed, headers=h)
    assert len(by_fastapi) == 1
    assert (by_routes.status_code, by_routes.content, by_routes.headers["x-cache"], by_routes.headers["content-type"]) \
        == (hit.status_code, hit.content, hit.headers["x-cache"], hit.headers["content-type"])
    # After a change: the routes' miss, then the fast path's hit of the document they stored.
    changed = client.post("/api/v1/positions", headers=h, json={"portfolio_id": pf["id"], "symbol": "AAA", "quantity": 10})
    assert changed.status_code == 201, changed.text
    routed_miss = client.get(routed, headers=h)
    assert routed_miss.headers["x-cache"] == "miss"
    fast_hit = client.get(path, headers=h)
    assert fast_hit.headers["x-cache"] == "hit" and fast_hit.content == routed_miss.content


@pytest.mark.parametrize("query", ["as_of=2099-01-01", "as_of=1990-01-02", "as_of=0", "as_of=", "as_of=2024-1-2"])
def test_a_date_the_routes_refuse_is_their_422(api, query):
    client, keys, pf, by_fastapi = api
    reply = client.get(f"{analytics.ANALYTICS_PREFIX}/{pf['id']}/factor-exposures?{query}",
                       headers=auth_header(keys["alice"]))
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["loc"] == ["query", "as_of"]  # FastAPI's validation answered


def test_errors_and_csv_are_the_routes(api):
    client, keys, pf, by_fastapi = api
    other = client.get(f"{analytics.ANALYTICS_PREFIX}/{pf['id']}/risk", headers=auth_header(keys["bob"]))
    assert other.status_code == 404 and "not found" in other.json()["detail"]
    missing = client.get(f"{analytics.ANALYTICS_PREFIX}/not-a-portfolio/stress-test", headers=auth_header(keys["alice"]))
    assert missing.status_code == 404
    assert client.get(f"{analytics.ANALYTICS_PREFIX}/{pf['id']}/risk").status_code == 401  # no key
    assert by_fastapi == []  # errors are raised, not answered through cached_response
    csv = client.get(f"{analytics.ANALYTICS_PREFIX}/{pf['id']}/factor-exposures/history",
                     headers={**auth_header(keys["alice"]), "Accept": "text/csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.startswith("session,gross_exposure") and len(by_fastapi) == 1
    scenario = client.get(f"{analytics.ANALYTICS_PREFIX}/{pf['id']}/stress-test?scenario=nope",
                          headers=auth_header(keys["alice"]))
    assert scenario.status_code == 422 and "unknown scenarios" in scenario.text
