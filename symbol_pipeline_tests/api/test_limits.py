"""Request bodies through a real client against uvicorn on PostgreSQL: authentication before the
body is read, the body limit (declared and streamed), and 422s that do not echo their input."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from symbol_pipeline.api.app import ApiSettings, api_settings, create_app
from symbol_pipeline.api.limits import DEFAULT_MAX_BODY_BYTES, MAX_BODY_ENV, MAX_INPUT_CHARS
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline_tests.api.conftest import served
from symbol_pipeline_tests.portfolio_data import seed_symbols

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MB = 1024 * 1024



class BodyReads:
    """An ASGI wrapper around the application that counts the request-body bytes the
    application (its middleware included) asked the server for: what "refused before the body
    is read" means, measured without a clock."""

    def __init__(self) -> None:
        self.bytes = 0
        self.app = None

    def wrap(self, app):
        self.app = app
        self.state = app.state  # served() gives the app's engine back through it
        return self

    async def __call__(self, scope, receive, send):
        async def counted():
            message = await receive()
            if message["type"] == "http.request":
                self.bytes += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@pytest.fixture
def body_reads() -> BodyReads:
    return BodyReads()


@pytest.fixture
def api(pg_engine, pg_url, tmp_path, body_reads):
    seed_symbols(pg_engine, {"AAA": {"market_beta": 1.1}}, {"AAA": 10.0})
    alice = svc.create_user(pg_engine, "alice")
    key = svc.issue_api_key(pg_engine, "alice")
    pf = svc.create_portfolio(pg_engine, alice.id, "alice main", 100_000)
    with served(body_reads.wrap(create_app(ApiSettings(database_url=pg_url, data_dir=tmp_path)))) as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client, port, {"Authorization": f"Bearer {key}"}, pf


def _raw_post_partial(port: int, path: str, declared: int, sent: int, headers: dict[str, str]) -> bytes:
    """POST declaring `declared` bytes but sending only `sent`: the reply's head.

    A server that read the body before answering would wait for the missing bytes (the socket
    times out)."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
            f"Content-Length: {declared}", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"[" + b"1," * (sent // 2))
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-key"}, {"Authorization": "Basic abc"}])
def test_a_5mb_body_without_a_valid_key_is_401_before_it_is_read(api, body_reads, headers):
    _, port, _, _ = api
    reply = _raw_post_partial(port, "/api/v1/portfolios", declared=5 * MB, sent=64 * 1024, headers=headers)
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
    assert b"www-authenticate: bearer" in reply.lower()
    assert body_reads.bytes == 0


def test_a_5mb_body_without_a_key_through_httpx_is_401(api, body_reads):
    client, _, _, _ = api
    try:
        r = client.post("/api/v1/positions", content=b"x" * (5 * MB), headers={"Content-Type": "application/json"})
    except httpx.TransportError:
        pytest.skip("the server closed the connection while the client was still sending (answer already given)")
    assert r.status_code == 401, r.text
    assert body_reads.bytes == 0


def test_a_declared_body_over_the_limit_is_413_without_reading_it(api, body_reads):
    _, port, auth, _ = api
    reply = _raw_post_partial(port, "/api/v1/positions", declared=DEFAULT_MAX_BODY_BYTES + 1,
                              sent=64 * 1024, headers=auth)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert body_reads.bytes == 0


def test_a_body_over_the_limit_is_413(api):
    client, _, auth, pf = api
    body = json.dumps({"portfolio_id": pf["id"], "symbol": "AAA", "quantity": 1, "pad": "x" * (2 * MB)})
    try:
        r = client.post("/api/v1/positions", content=body, headers={**auth, "Content-Type": "application/json"})
    except httpx.TransportError:
        pytest.fail("no 413 reply before the connection closed")
    assert r.status_code == 413
    assert "larger than" in r.json()["detail"]


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(api):
    client, _, auth, _ = api

    def chunks():
        yield b'{"name": "'
        for _ in range(40):  # 2.5 MB in 64 KB chunks, no Content-Length: Transfer-Encoding chunked
            yield b"x" * (64 * 1024)
        yield b'", "equity": 5}'

    try:
        r = client.post("/api/v1/portfolios", content=chunks(), headers={**auth, "Content-Type": "application/json"})
    except httpx.TransportError:
        pytest.fail("no 413 reply before the connection closed")
    assert r.status_code == 413
    assert len(client.get("/api/v1/portfolios", headers=auth).json()) == 1  # nothing written


def test_a_chunked_body_under_the_limit_is_accepted(api):
    client, _, auth, _ = api

    def chunks():
        yield b'{"name": "chunked",'
        yield b' "equity": 5}'

    r = client.post("/api/v1/portfolios", content=chunks(), headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("payload", [
    [{"symbol": "AAA", "quantity": 1}] * 2000,  # a list where an object is expected
    {"name": ["x" * 40] * 2000, "equity": 5},  # a 2,000-element list where a string is expected
    {"name": "n", "equity": 5, "currency": "y" * 50_000},  # a long string (the input is cut)
    {"name": "x" * 100_000, "equity": 5},  # a string too long for the field
])
def test_a_large_bad_payload_is_422_smaller_than_the_request(api, payload):
    client, _, auth, _ = api
    body = json.dumps(payload)
    r = client.post("/api/v1/portfolios", content=body, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert len(r.content) < min(len(body), 5000)
    for error in r.json()["detail"]:
        assert "loc" in error and "msg" in error
        assert len(json.dumps(error.get("input", ""))) <= MAX_INPUT_CHARS + 10


def test_many_bad_fields_are_named_but_capped(api):
    client, _, auth, _ = api
    body = {"name": "n", "equity": 5, **{f"extra{i}": i for i in range(2000)}}
    r = client.post("/api/v1/portfolios", json=body, headers=auth)
    assert r.status_code == 422
    document = r.json()
    assert len(document["detail"]) <= 50 and document["errors_not_shown"] > 0
    assert len(r.content) < len(json.dumps(body))


def test_small_bad_input_still_names_the_field_and_the_input(api):
    client, _, auth, _ = api
    r = client.post("/api/v1/portfolios", json={"name": "n", "equity": -1}, headers=auth)
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "equity"] and error["input"] == -1


def test_normal_requests_still_work(api, body_reads):
    client, _, auth, pf = api
    r = client.post("/api/v1/portfolios", json={"name": "second", "equity": 1000}, headers=auth)
    assert r.status_code == 201, r.text
    assert body_reads.bytes == len(r.request.content)  # the counter sees an accepted body whole
    r = client.post("/api/v1/positions", json={"portfolio_id": pf["id"], "symbol": "AAA", "quantity": 3}, headers=auth)
    assert r.status_code == 201, r.text
    assert {p["name"] for p in client.get("/api/v1/portfolios", headers=auth).json()} == {"alice main", "second"}
    # Without a body the endpoint authenticates as before.
    assert client.get("/api/v1/portfolios").status_code == 401
    # A key that is wrong on a request with a body is a 401 too, with the usual message.
    r = client.post("/api/v1/portfolios", json={"name": "x", "equity": 1}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "API key" in r.json()["detail"]


def test_the_limit_is_a_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMBOL_PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv(MAX_BODY_ENV, raising=False)
    assert api_settings("sqlite:///x.db").max_body_bytes == DEFAULT_MAX_BODY_BYTES == MB
    monkeypatch.setenv(MAX_BODY_ENV, "4096")
    assert api_settings("sqlite:///x.db").max_body_bytes == 4096
