"""One request's work is bounded (issue 18 item 4): an import's rows, and JSON bodies parsed off
the event loop with a bound on what comes back. Through a real client against uvicorn, on SQLite.

The latency the worker process protects (a cached GET while others post 1 MiB bodies) is a figure,
not a test: `benchmarks/bench_body_parsing.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

import httpx
import pytest
import sqlalchemy as sa

from symbol_pipeline.api import parsing
from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.portfolio_schema import positions
from symbol_pipeline_tests.api.conftest import served
from symbol_pipeline_tests.portfolio_data import seed_symbols

pytestmark = [pytest.mark.slow]

ROW_LIMIT = 100


@pytest.fixture
def api(tmp_path):
    url = f"sqlite:///{tmp_path / 'bounded.sqlite'}"
    app = create_app(ApiSettings(database_url=url, data_dir=tmp_path, max_import_rows=ROW_LIMIT))
    engine = app.state.engine
    seed_symbols(engine, {"AAA": {"market_beta": 1.0}}, {"AAA": 10.0})
    user = svc.create_user(engine, "bounded")
    key = svc.issue_api_key(engine, "bounded")
    pid = svc.create_portfolio(engine, user.id, "bounded", 100_000)["id"]
    with served(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                           headers={"Authorization": f"Bearer {key}"}) as client:
        yield client, engine, pid


def _held(engine, pid: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(positions.c.portfolio_id == pid)).scalar_one()


@pytest.mark.parametrize("rows", [ROW_LIMIT + 1, 200_000])
@pytest.mark.parametrize("kind", ["text/csv", "application/json"])
def test_an_import_beyond_the_row_limit_is_413_naming_the_setting_and_writes_nothing(api, rows, kind):
    """200,000 rows of `AAA,1` are 0.8 MB, under the byte limit: they held a worker for 128 s."""
    client, engine, pid = api
    body = ("symbol,quantity\n" + "AAA,1\n" * rows if kind == "text/csv"
            else json.dumps([{"symbol": "AAA", "quantity": 1}] * rows))
    answer = client.post(f"/api/v1/portfolios/{pid}/positions/import", content=body, headers={"Content-Type": kind})
    assert answer.status_code == 413, answer.text[:300]
    assert f"more than {ROW_LIMIT} rows" in answer.json()["detail"]
    assert "SYMBOL_PIPELINE_API_MAX_IMPORT_ROWS" in answer.json()["detail"]
    assert _held(engine, pid) == 0


def test_an_import_at_the_row_limit_is_accepted(api):
    client, engine, pid = api
    answer = client.post(f"/api/v1/portfolios/{pid}/positions/import",
                         json=[{"symbol": "AAA", "quantity": i + 1} for i in range(ROW_LIMIT)])
    assert answer.status_code == 201 and len(answer.json()["positions"]) == ROW_LIMIT
    assert [p["quantity"] for p in answer.json()["positions"]] == [i + 1 for i in range(ROW_LIMIT)]
    assert _held(engine, pid) == ROW_LIMIT


def test_a_big_json_body_of_many_values_is_413_and_a_padded_valid_one_is_accepted(api):
    client, engine, pid = api
    headers = {"Content-Type": "application/json"}
    many = client.post("/api/v1/positions", content=b"[" + b"0," * 400_000 + b"0]", headers=headers)
    assert many.status_code == 413, many.text[:300]
    assert f"more than {parsing.MAX_JSON_VALUES} JSON values" in many.json()["detail"]
    one = json.dumps({"portfolio_id": pid, "symbol": "AAA", "quantity": 3}).encode()
    padded = client.post("/api/v1/positions", content=one + b" " * 900_000, headers=headers)
    assert padded.status_code == 201, padded.text[:300]
    broken = client.post("/api/v1/positions", content=one + b" " * 900_000 + b"}", headers=headers)
    assert broken.status_code == 422 and broken.json()["detail"][0]["type"] == "json_invalid", broken.text[:300]
    deep = client.post("/api/v1/positions", content=b"[" * 100_000 + b"]" * 100_000, headers=headers)
    assert 400 <= deep.status_code < 500, deep.text[:300]
    # A list under the value bound: the 422 names the error without encoding the whole input.
    short = client.post("/api/v1/positions", content=json.dumps(list(range(9_000))).encode(), headers=headers)
    assert short.status_code == 422 and "input" not in short.json()["detail"][0], short.text[:300]
    assert _held(engine, pid) == 1


def test_large_bodies_are_parsed_in_another_process(monkeypatch):
    """The worker is a process (a thread would hold the GIL through the parse), and a large body's
    `json()` goes to it while a small one is parsed inline."""
    assert asyncio.run(parsing.offload(os.getpid)) != os.getpid()
    sent: list[int] = []

    async def recording(function, body, *args):
        sent.append(len(body))
        return function(body, *args)

    monkeypatch.setattr(parsing, "offload", recording)

    def request(body: bytes) -> parsing.OffloadedRequest:
        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        return parsing.OffloadedRequest({"type": "http", "method": "POST", "headers": []}, receive)

    small, large = b"[" + b"1," * 100 + b"1]", b"[1" + b" " * parsing.INLINE_BYTES + b"]"
    assert len(asyncio.run(request(small).json())) == 101 and sent == []
    assert asyncio.run(request(large).json()) == [1] and sent == [len(large)]


def test_a_dead_parsing_worker_is_a_503_then_replaced(api):
    client, engine, pid = api
    padded = json.dumps({"portfolio_id": pid, "symbol": "AAA", "quantity": 3}).encode() + b" " * 100_000
    headers = {"Content-Type": "application/json"}
    assert client.post("/api/v1/positions", content=padded, headers=headers).status_code == 201
    os.kill(asyncio.run(parsing.offload(os.getpid)), signal.SIGKILL)
    cut = client.post("/api/v1/positions", content=padded, headers=headers)
    assert cut.status_code == 503 and cut.headers["Retry-After"] == "1", cut.text
    assert client.post("/api/v1/positions", content=padded, headers=headers).status_code == 201
    assert _held(engine, pid) == 2
