"""The exposure history endpoint through a real client against uvicorn on PostgreSQL: for every
session the figures of factor-exposures?as_of=<session>, CSV on request, 422 for dates out of range."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.lib.sessions import sessions_between
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.services.portfolio.history import CSV_COLUMNS
from symbol_pipeline_tests.api.conftest import auth_header as _auth
from symbol_pipeline_tests.api.conftest import served
from symbol_pipeline_tests.portfolio_data import seed_market

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
DAYS = [d.date() for d in sessions_between("2024-05-20", "2024-06-28")]


@pytest.fixture
def api(pg_engine, pg_url, tmp_path):
    seed_market(pg_engine, ["AAA", "BBB", "CCC"], DAYS, betas_from=3, splits={("BBB", DAYS[9]): 3.0})
    user = svc.create_user(pg_engine, "kim")
    svc.create_user(pg_engine, "lee")
    keys = {n: svc.issue_api_key(pg_engine, n) for n in ("kim", "lee")}
    pf = svc.create_portfolio(pg_engine, user.id, "kim's", 100_000)
    a = svc.add_position(pg_engine, pf["id"], "AAA", 400, entry_date=DAYS[0])["position"]
    svc.add_position(pg_engine, pf["id"], "BBB", -300, entry_date=DAYS[4])
    svc.add_position(pg_engine, pf["id"], "CCC", 250, entry_date=DAYS[7])
    svc.update_position(pg_engine, a["id"], quantity=100, effective_date=DAYS[15])
    svc.set_equity(pg_engine, pf["id"], 80_000, effective_date=DAYS[0])
    with served(create_app(ApiSettings(database_url=pg_url, data_dir=tmp_path))) as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
        yield client, keys, pf



def test_history_equals_the_point_in_time_document_on_every_session(api):
    client, keys, pf = api
    h = _auth(keys["kim"])
    base = f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures"
    r = client.get(f"{base}/history", headers=h, params={"start": DAYS[0].isoformat(), "end": DAYS[-1].isoformat()})
    assert r.status_code == 200 and r.headers["x-cache"] == "miss", r.text
    doc = r.json()
    assert doc["sessions"] == [d.isoformat() for d in DAYS]
    assert set(doc) == {"portfolio_id", "start", "end", "sessions", "factors", "gross_exposure", "net_exposure",
                        "coverage"}
    assert set(doc["factors"]) == set(FACTOR_NAMES) == set(doc["coverage"])
    for t, day in enumerate(DAYS):
        point = client.get(base, headers=h, params={"as_of": day.isoformat()}).json()
        assert doc["gross_exposure"][t] == pytest.approx(point["gross_exposure"], rel=1e-12)
        assert doc["net_exposure"][t] == pytest.approx(point["net_exposure"], rel=1e-12)
        for f in FACTOR_NAMES:
            expected = point["factors"][f]
            for got, want in ((doc["factors"][f][t], expected["beta"]), (doc["coverage"][f][t], expected["coverage"])):
                assert (got is None and want is None) or got == pytest.approx(want, rel=1e-12, abs=1e-15), (day, f)
    assert doc["factors"]["market_beta"][0] is None and doc["factors"]["market_beta"][3] is not None
    again = client.get(f"{base}/history", headers=h, params={"start": DAYS[0].isoformat(), "end": DAYS[-1].isoformat()})
    assert again.headers["x-cache"] == "hit" and again.json() == doc


def test_csv_defaults_and_errors(api):
    client, keys, pf = api
    h = _auth(keys["kim"])
    path = f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures/history"
    r = client.get(path, headers={**h, "Accept": "text/csv"}, params={"end": DAYS[-1].isoformat()})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.splitlines()
    assert lines[0].split(",") == CSV_COLUMNS and len(lines) == 1 + len(DAYS)  # clipped to the first date
    assert lines[1].startswith(DAYS[0].isoformat() + ",")
    for params, needle in (({"start": "2024-05-17", "end": DAYS[5].isoformat()}, "2024-05-17"),
                           ({"start": DAYS[5].isoformat(), "end": DAYS[2].isoformat()}, "after end"),
                           ({"end": (dt.date.today() + dt.timedelta(days=5)).isoformat()}, "today"),
                           ({"start": "junk"}, "date")):
        r = client.get(path, headers=h, params=params)
        assert r.status_code == 422 and needle in r.text, (params, r.text)
    assert client.get(path, headers=_auth(keys["lee"])).status_code == 404
    assert client.get(path).status_code == 401
    schema = client.get("/openapi.json").json()["paths"]["/api/v1/analytics/portfolio/{portfolio_id}/factor-exposures/history"]
    content = schema["get"]["responses"]["200"]["content"]
    assert "example" in content["application/json"] and "example" in content["text/csv"]
