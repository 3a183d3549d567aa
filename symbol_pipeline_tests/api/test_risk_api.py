"""The risk endpoint through a real client against uvicorn on PostgreSQL."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline_tests.api.conftest import auth_header as _auth
from symbol_pipeline_tests.api.conftest import served
from symbol_pipeline_tests.portfolio_data import CALC_DATE, seed_etf_history, seed_symbols
from symbol_pipeline_tests.services.portfolio.test_risk import AAA_BETAS, AAA_S2, ENTRY, GROUPS, set_residuals

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PATH = "/api/v1/analytics/portfolio/{}/risk"
FIGURES = {"factor_variance", "specific_variance", "total_variance", "volatility_annualised", "var_95_1d",
           "var_99_1d", "coverage", "contributions"}


@pytest.fixture
def api(pg_engine, pg_url, tmp_path):
    seed_symbols(pg_engine, {"AAA": AAA_BETAS, "OLD": AAA_BETAS}, {"AAA": 10.0, "OLD": 20.0})
    set_residuals(pg_engine, "AAA", AAA_S2)  # OLD keeps NULL: computed before the column existed
    seed_etf_history(pg_engine)
    alice = svc.create_user(pg_engine, "alice")
    svc.create_user(pg_engine, "bob")
    keys = {n: svc.issue_api_key(pg_engine, n) for n in ("alice", "bob")}
    pf = svc.create_portfolio(pg_engine, alice.id, "alice main", 100_000)
    svc.add_position(pg_engine, pf["id"], "AAA", 1000, entry_date=ENTRY)
    old = svc.create_portfolio(pg_engine, alice.id, "alice old", 100_000)
    svc.add_position(pg_engine, old["id"], "OLD", 100, entry_date=ENTRY)
    with served(create_app(ApiSettings(database_url=pg_url, data_dir=tmp_path))) as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client, keys, pf, old, pg_engine



def test_risk_for_the_owner_cached_then_invalidated(api):
    client, keys, pf, _, engine = api
    h = _auth(keys["alice"])
    r = client.get(PATH.format(pf["id"]), headers=h)
    assert r.status_code == 200 and r.headers["x-cache"] == "miss"
    doc = r.json()
    assert {"portfolio_id", "as_of", "headline", "models", "assumptions"} <= set(doc)
    assert doc["portfolio_id"] == pf["id"] and doc["as_of"] == CALC_DATE.isoformat() and doc["headline"] == "style"
    assert set(doc["models"]) == {"market", "rates", "style"}
    for name, factors in GROUPS.items():
        m = doc["models"][name]
        assert FIGURES <= set(m) and list(m["contributions"]) == factors
        assert sum(m["contributions"].values()) == pytest.approx(m["factor_variance"], rel=1e-12)
        assert m["specific_variance"] == pytest.approx(0.1**2 * AAA_S2[name], rel=1e-12)
        assert m["var_99_1d"] == pytest.approx(2.3263 * np.sqrt(m["total_variance"]) * 100_000) and m["var_99_1d"] > 0
    assert doc == svc.get_portfolio_risk(engine, pf["id"])  # the service's document, served as is
    again = client.get(PATH.format(pf["id"]), headers=h)
    assert again.headers["x-cache"] == "hit" and again.json() == doc
    # A position change through the API makes the cached entry unreachable.
    added = client.post("/api/v1/positions", headers=h, json={"portfolio_id": pf["id"], "symbol": "AAA", "quantity": 1000})
    assert added.status_code == 201
    changed = client.get(PATH.format(pf["id"]), headers=h)
    assert changed.headers["x-cache"] == "miss"
    assert changed.json()["models"]["style"]["specific_variance"] == pytest.approx(0.2**2 * AAA_S2["style"])
    dated = client.get(PATH.format(pf["id"]), headers=h, params={"as_of": CALC_DATE.isoformat()})
    assert dated.status_code == 200 and dated.headers["x-cache"] == "miss"
    assert dated.json()["models"]["style"]["specific_variance"] == pytest.approx(0.1**2 * AAA_S2["style"])
    assert client.get(PATH.format(pf["id"]), headers=h, params={"as_of": "2023-01-03"}).status_code == 422
    assert client.get(PATH.format(pf["id"]), headers=h, params={"as_of": "2999-01-04"}).status_code == 422


def test_auth_ownership_bad_input_and_missing_residuals(api):
    client, keys, pf, old, _ = api
    assert client.get(PATH.format(pf["id"])).status_code == 401
    assert client.get(PATH.format(pf["id"]), headers=_auth("sp_wrong")).status_code == 401
    assert client.get(PATH.format(pf["id"]), headers=_auth(keys["bob"])).status_code == 404
    assert client.get(PATH.format("not-a-uuid"), headers=_auth(keys["alice"])).status_code == 404
    h = _auth(keys["alice"])
    assert client.get(PATH.format(pf["id"]), headers=h, params={"as_of": "junk"}).status_code == 422
    r = client.get(PATH.format(old["id"]), headers=h)
    assert r.status_code == 409
    assert r.json()["detail"].startswith(f"residual variance not computed for {CALC_DATE}: backfill")


def test_openapi_documents_the_endpoint_with_an_example(api):
    client = api[0]
    op = client.get("/openapi.json").json()["paths"]["/api/v1/analytics/portfolio/{portfolio_id}/risk"]["get"]
    example = op["responses"]["200"]["content"]["application/json"]["example"]
    assert example["headline"] == "style" and set(example["models"]) == {"market", "rates", "style"}
    style = example["models"]["style"]
    assert sum(style["contributions"].values()) == pytest.approx(style["factor_variance"])
    assert {"404", "409"} <= set(op["responses"]) and "as_of" in {p["name"] for p in op["parameters"]}
