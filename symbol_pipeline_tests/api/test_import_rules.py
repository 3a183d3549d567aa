"""One set of rules for every way in (issue 18, items 1 and 2), through a real client against uvicorn on
PostgreSQL: what the single-position endpoints refuse, the CSV and JSON imports refuse too, with a
422 naming the row, the field and the rule, and nothing written; what no parser survives (deep
nesting, a huge CSV field, a huge integer) is a 4xx as well; dates have one earliest date, the
exchange calendar's first session, and a date the calendar cannot serve is a 422 that says so."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.portfolio_schema import portfolio_equity, position_quantities, positions
from symbol_pipeline.storage.schema import symbol_onboarding_queue
from symbol_pipeline_tests.api.conftest import served
from symbol_pipeline_tests.portfolio_data import seed_etf_history, seed_symbols

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CSV = {"Content-Type": "text/csv"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(pg_engine, pg_url, tmp_path):
    seed_symbols(pg_engine, {"AAA": {"market_beta": 1.1}}, {"AAA": 10.0})
    seed_etf_history(pg_engine)
    alice = svc.create_user(pg_engine, "alice")
    auth = {"Authorization": f"Bearer {svc.issue_api_key(pg_engine, 'alice')}"}
    pf = svc.create_portfolio(pg_engine, alice.id, "main", 100_000)
    svc.add_position(pg_engine, pf["id"], "AAA", 10, entry_date="2024-06-03")
    with served(create_app(ApiSettings(database_url=pg_url, data_dir=tmp_path))) as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client, auth, pf["id"], pg_engine


def _written(engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                     for t in (positions, position_quantities, portfolio_equity, symbol_onboarding_queue))


def _import(client, auth, pid, body: str | bytes, kind: dict) -> httpx.Response:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return client.post(f"/api/v1/portfolios/{pid}/positions/import", content=raw, headers={**auth, **kind})


# (body, content type, words the 422 must hold: the field and the rule)
BAD_IMPORTS = {
    "quantity beyond the bound (CSV)": ("symbol,quantity\nAAA,1e300\n", CSV, ["quantity", "within ±1e+12"]),
    "quantity beyond the bound (JSON)": ('[{"symbol": "AAA", "quantity": 1e300}]', JSON, ["quantity", "within"]),
    "price beyond the bound": ('[{"symbol": "AAA", "quantity": 1, "entry_price": 1e300}]', JSON,
                               ["entry_price", "within ±1e+13"]),
    "boolean quantity": ('[{"symbol": "AAA", "quantity": true}]', JSON, ["quantity", "not a boolean"]),
    "non-ASCII digits (CSV)": ("symbol,quantity\nAAA,١٢٣\n", CSV, ["quantity", "ASCII digits"]),
    "non-ASCII digits (JSON text)": ('[{"symbol": "AAA", "quantity": "١٢٣"}]', JSON, ["quantity", "ASCII digits"]),
    "year-1 entry date": ('[{"symbol": "AAA", "quantity": 1, "entry_date": "0001-01-01"}]', JSON,
                          ["entry_date", "1995-01-03"]),
    "entry date as a number": ('[{"symbol": "AAA", "quantity": 1, "entry_date": 0}]', JSON,
                               ["entry_date", "YYYY-MM-DD"]),
    "huge integer": ('[{"symbol": "AAA", "quantity": ' + "9" * 400 + "}]", JSON, ["quantity", "within"]),
    "huge integer as text": ("symbol,quantity\nAAA," + "9" * 400 + "\n", CSV, ["quantity", "finite"]),
    "second row bad": ("symbol,quantity\nAAA,1\nAAA,true\n", CSV, ["row 2", "quantity", "ASCII digits"]),
    "folded symbol": ("symbol,quantity\nſpy,1\n", CSV, ["symbol", "non-ASCII"]),
    "control character in a symbol": ('[{"symbol": "\\u001fAAA", "quantity": 1}]', JSON,
                                      ["symbol", "control character"]),
    "formula symbol": ("symbol,quantity\n=CMD,1\n", CSV, ["symbol", "starting with a letter"]),
    "deeply nested JSON": ("[" * 100_000 + "]" * 100_000, JSON, ["JSON", "nested too deeply"]),
    "CSV field over 128 KiB": ("symbol,quantity\nAAA," + "1" * 140_000 + "\n", CSV,
                               ["CSV line 2", "field larger than field limit"]),
    "investment class with a newline": ('[{"symbol": "AAA", "quantity": 1, "investment_class": "a\\nb"}]', JSON,
                                        ["investment_class", "control characters"]),
}


@pytest.mark.parametrize("case", list(BAD_IMPORTS))
def test_imports_obey_the_rules_of_single_positions_and_write_nothing(api, case):
    client, auth, pid, engine = api
    body, kind, words = BAD_IMPORTS[case]
    before = _written(engine)
    reply = _import(client, auth, pid, body, kind)
    assert reply.status_code == 422, (case, reply.status_code, reply.text[:300])
    detail = reply.json()["detail"]
    assert all(w in detail for w in words), (case, detail)
    assert len(reply.text) < 1000
    assert _written(engine) == before


@pytest.mark.parametrize("symbol", ["ſpy", "ß", "=CMD", "^", "....", "\u001fAAA", "AAA\n", "ｓｐｙ"])
def test_a_symbol_is_refused_alike_by_every_endpoint_and_never_queued(api, symbol):
    client, auth, pid, engine = api
    before = _written(engine)
    single = client.post("/api/v1/positions", json={"portfolio_id": pid, "symbol": symbol, "quantity": 1},
                         headers=auth)
    assert single.status_code == 422 and single.json()["detail"][0]["loc"][-1] == "symbol", single.text
    imported = client.post(f"/api/v1/portfolios/{pid}/positions/import", json=[{"symbol": symbol, "quantity": 1}],
                           headers=auth)
    assert imported.status_code == 422 and "symbol" in imported.json()["detail"], imported.text
    assert _written(engine) == before


def test_tickers_with_punctuation_stay_valid_everywhere(api):
    client, auth, pid, _ = api
    single = client.post("/api/v1/positions", json={"portfolio_id": pid, "symbol": "brk-b", "quantity": 1},
                         headers=auth)
    assert single.status_code == 201 and single.json()["position"]["symbol"] == "BRK-B"
    imported = _import(client, auth, pid, "symbol,quantity\n^irx,1\nCL=F,2\n", CSV)
    assert imported.status_code == 201, imported.text
    assert [p["symbol"] for p in imported.json()["positions"]] == ["^IRX", "CL=F"]


@pytest.mark.parametrize("path", ["/api/v1/portfolios/{pid}/positions?as_of=0",
                                  "/api/v1/analytics/portfolio/{pid}/factor-exposures?as_of=0",
                                  "/api/v1/analytics/portfolio/{pid}/factor-exposures/history?end=0",
                                  "/api/v1/symbols/AAA/factors?date=0",
                                  "/api/v1/portfolios/{pid}/positions?as_of=20240628"])
def test_a_number_is_not_a_date(api, path):
    """`as_of=0` was read as 1970-01-01 (seconds since the epoch)."""
    client, auth, pid, _ = api
    reply = client.get(path.format(pid=pid), headers=auth)
    assert reply.status_code == 422, reply.text
    assert "YYYY-MM-DD" in reply.json()["detail"][0]["msg"]


def test_history_ending_before_the_first_date_is_the_422_of_as_of(api):
    client, auth, pid, _ = api
    as_of = client.get(f"/api/v1/portfolios/{pid}/positions?as_of=2024-05-31", headers=auth)
    history = client.get(f"/api/v1/analytics/portfolio/{pid}/factor-exposures/history?end=2024-05-31", headers=auth)
    assert as_of.status_code == history.status_code == 422, history.text
    assert "before portfolio" in as_of.json()["detail"] and "before portfolio" in history.json()["detail"]
    assert "its first date is 2024-06-03" in history.json()["detail"]


def test_dates_the_calendar_cannot_serve_are_422_that_say_so(api):
    """A first date near or before the calendar's first session (1995-01-03) made stress tests and
    history 500s; an equity effective in 1900 was accepted and led there."""
    client, auth, pid, engine = api
    before = _written(engine)
    old = client.post(f"/api/v1/portfolios/{pid}/equity", json={"equity": 1000, "effective_date": "1900-01-01"},
                      headers=auth)
    assert old.status_code == 422 and "1995-01-03" in old.text
    assert _written(engine) == before
    early = client.post(f"/api/v1/portfolios/{pid}/equity", json={"equity": 1000, "effective_date": "1995-01-03"},
                        headers=auth)
    assert early.status_code == 200, early.text
    base = f"/api/v1/analytics/portfolio/{pid}"
    stress = client.get(f"{base}/stress-test?date=1995-02-01", headers=auth)
    assert stress.status_code == 422 and "exchange calendar's first session" in stress.json()["detail"], stress.text
    for path in (f"{base}/factor-exposures/history?end=1995-02-01",
                 f"{base}/factor-exposures/history?start=1995-01-03&end=1995-03-01",
                 f"{base}/factor-exposures?as_of=1995-01-03", f"{base}/risk?as_of=1995-02-01",
                 f"/api/v1/portfolios/{pid}/positions?as_of=1995-01-03"):
        reply = client.get(path, headers=auth)
        assert reply.status_code < 500, (path, reply.status_code, reply.text[:300])
    history = client.get(f"{base}/factor-exposures/history?end=1995-02-01", headers=auth).json()
    assert history["start"] == "1995-01-03" and len(history["sessions"]) == 22  # the sessions there are
    for day in ("1995-01-02", "0001-01-01", "1677-09-21"):
        reply = client.get(f"{base}/stress-test?date={day}", headers=auth)
        assert reply.status_code == 422 and "1995-01-03" in reply.text, reply.text
