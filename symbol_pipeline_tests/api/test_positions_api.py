"""What a portfolio app needs, through a real client against uvicorn on PostgreSQL: positions as of a
date a page at a time, dated quantity and equity changes, closing, deleting, and imports."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.portfolio_schema import portfolio_changes, position_quantities, positions
from symbol_pipeline_tests.api.conftest import auth_header as _auth
from symbol_pipeline_tests.api.conftest import served
from symbol_pipeline_tests.portfolio_data import seed_symbols

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def api(pg_engine, pg_url, tmp_path):
    seed_symbols(pg_engine, {"AAA": {"market_beta": 1.0}, "BBB": {"market_beta": 2.0}}, {"AAA": 10.0, "BBB": 20.0})
    user = svc.create_user(pg_engine, "max")
    svc.create_user(pg_engine, "ned")
    keys = {n: svc.issue_api_key(pg_engine, n) for n in ("max", "ned")}
    pf = svc.create_portfolio(pg_engine, user.id, "max's", 100_000)
    settings = ApiSettings(database_url=pg_url, data_dir=tmp_path, max_body_bytes=512, max_import_bytes=4096)
    with served(create_app(settings)) as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
        yield client, keys, pf, pg_engine



def _counts(engine):
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                     for t in (positions, position_quantities, portfolio_changes))


def test_import_csv_and_json_all_or_nothing_with_its_own_limit(api):
    client, keys, pf, engine = api
    h = _auth(keys["max"])
    path = f"/api/v1/portfolios/{pf['id']}/positions/import"
    before = _counts(engine)
    bad = "symbol,quantity,entry_date\nAAA,10,2024-06-03\nA|B,5,2024-06-03\n"
    r = client.post(path, headers={**h, "Content-Type": "text/csv"}, content=bad)
    assert r.status_code == 422 and "row 2" in r.json()["detail"]
    assert _counts(engine) == before
    csv = "symbol,quantity,entry_price,entry_date\n" + "".join(f"AAA,{i + 1},9.5,2024-06-03\n" for i in range(30))
    assert 512 < len(csv.encode()) < 4096  # over the default limit, under the import limit
    r = client.post(path, headers={**h, "Content-Type": "text/csv"}, content=csv)
    assert r.status_code == 201, r.text
    assert len(r.json()["positions"]) == 30
    r = client.post(path, headers={**h, "Content-Type": "application/json"},
                    content='[{"symbol": "BBB", "quantity": -5, "entry_date": "2024-06-10"}]')
    assert r.status_code == 201 and r.json()["positions"][0]["symbol"] == "BBB"
    r = client.post(path, headers={**h, "Content-Type": "text/csv"}, content="symbol,quantity\n" + "AAA,1\n" * 700)
    assert r.status_code == 413  # beyond the import limit (4096 here)
    r = client.post("/api/v1/portfolios", headers=h, json={"name": "x" * 100, "equity": 1, "currency": "USD",
                                                           "pad": "y" * 600})
    assert r.status_code == 413  # every other path keeps the default limit (512 here)
    r = client.post(path, headers={**h, "Content-Type": "application/xml"}, content="<a/>")
    assert r.status_code == 415
    r = client.post(path, headers={**_auth(keys["ned"]), "Content-Type": "text/csv"}, content="symbol,quantity\nAAA,1\n")
    assert r.status_code == 404
    assert _counts(engine)[0] == before[0] + 31


def test_positions_as_of_paginated_dated_changes_close_and_delete(api):
    client, keys, pf, engine = api
    h = _auth(keys["max"])
    for i in range(5):
        r = client.post("/api/v1/positions", headers=h, json={"portfolio_id": pf["id"], "symbol": "AAA",
                                                              "quantity": 10 + i, "entry_date": f"2024-06-0{i + 3}"})
        assert r.status_code == 201
    ids = [p["id"] for p in svc.list_positions(engine, pf["id"])]
    listed = f"/api/v1/portfolios/{pf['id']}/positions"
    r = client.get(listed, headers=h, params={"as_of": "2024-06-05", "limit": 2})
    assert r.status_code == 200 and r.headers["x-total-count"] == "3" and len(r.json()) == 2
    assert 'rel="next"' in r.headers["link"] and "offset=2" in r.headers["link"]
    assert client.get(listed, headers=h, params={"as_of": "2024-06-05", "limit": 2, "offset": 2}).json()[0]["id"] == ids[2]
    assert client.get(listed, headers=h, params={"as_of": "2024-06-02"}).status_code == 422  # before the first date
    r = client.patch(f"/api/v1/positions/{ids[0]}", headers=h, json={"quantity": 99, "effective_date": "2024-06-20"})
    assert r.status_code == 200 and r.json()["quantity"] == 99
    on = {p["id"]: p["quantity"] for p in client.get(listed, headers=h, params={"as_of": "2024-06-19"}).json()}
    assert on[ids[0]] == 10  # the earlier date keeps its quantity
    history = client.get(f"/api/v1/positions/{ids[0]}", headers=h).json()["quantity_history"]
    assert [(x["effective_date"], x["quantity"]) for x in history] == [("2024-06-03", 10.0), ("2024-06-20", 99.0)]
    assert client.patch(f"/api/v1/positions/{ids[0]}", headers=h, json={"quantity": 0}).status_code == 422
    assert client.patch(f"/api/v1/positions/{ids[0]}", headers=_auth(keys["ned"]), json={"quantity": 1}).status_code == 404
    r = client.post(f"/api/v1/positions/{ids[1]}/close", headers=h, json={"exit_date": "2024-06-21", "exit_price": 11})
    assert r.status_code == 200 and r.json()["exit_date"] == "2024-06-21"
    assert ids[1] not in {p["id"] for p in client.get(listed, headers=h).json()}
    r = client.post(f"/api/v1/portfolios/{pf['id']}/equity", headers=h,
                    json={"equity": 50_000, "effective_date": "2024-06-10"})
    assert r.status_code == 200
    doc = client.get(f"/api/v1/portfolios/{pf['id']}", headers=h).json()
    assert [e["effective_date"] for e in doc["equity_history"]][0] == "2024-06-10"
    r = client.get(f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures", headers=h,
                   params={"as_of": "2024-06-28"})
    assert r.json()["equity"] == 50_000.0  # the 06-10 equity; the creation row applies from today
    r = client.get(f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures", headers=h)
    assert r.json()["equity"] == 100_000.0
    assert client.delete(f"/api/v1/portfolios/{pf['id']}", headers=_auth(keys["ned"])).status_code == 404
    assert client.delete(f"/api/v1/portfolios/{pf['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/portfolios/{pf['id']}", headers=h).status_code == 404
    assert _counts(engine)[:2] == (0, 0)
    r = client.get("/api/v1/portfolios", headers=h, params={"limit": 1})
    assert r.status_code == 200 and r.json() == [] and r.headers["x-total-count"] == "0"
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/portfolios/{portfolio_id}/positions", "/api/v1/positions/{position_id}",
                 "/api/v1/portfolios/{portfolio_id}/positions/import", "/api/v1/positions/{position_id}/close",
                 "/api/v1/portfolios/{portfolio_id}/equity"):
        assert path in paths
