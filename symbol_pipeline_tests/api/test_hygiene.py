"""Hygiene of the HTTP layer (issue 18 item 6), over HTTP: error bodies never echo a long input, two
Authorization headers are a 400, /docs and /redoc load only assets served by the package, and the
server's log at its default level holds no SQL parameters (key hashes, position data)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
import sqlalchemy as sa

from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline_tests.api.conftest import served

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LONG = "x" * 60_000


@pytest.fixture
def api(pg_engine, pg_url, tmp_path):
    alice = svc.create_user(pg_engine, "alice")
    key = svc.issue_api_key(pg_engine, "alice")
    pf = svc.create_portfolio(pg_engine, alice.id, "main", 100_000)
    with served(create_app(ApiSettings(database_url=pg_url, data_dir=tmp_path))) as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client, key, pf["id"]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", f"/api/v1/portfolios/{LONG}", None),  # 404 quoting the id
    ("GET", f"/api/v1/analytics/portfolio/{LONG}/factor-exposures", None),
    ("GET", f"/api/v1/positions/{LONG}", None),  # 422: not an integer
    ("GET", f"/api/v1/symbols/{LONG}/status", None),  # 422 from the symbol rule
    ("GET", f"/api/v1/{LONG}", None),  # no such route
    ("GET", f"/api/v1/portfolios/{{pid}}/positions?as_of={LONG}", None),
    ("POST", "/api/v1/portfolios", '{"' + LONG + '": 1, "name": "n", "equity": 1}'),  # an unknown key
    ("POST", "/api/v1/portfolios/{pid}/positions/import", '[{"symbol": "' + LONG + '", "quantity": 1}]'),
    ("POST", "/api/v1/portfolios/{pid}/positions/import", '[{"' + LONG + '": 1}]'),
])
def test_error_bodies_never_echo_a_long_input(api, method, path, body):
    client, key, pid = api
    reply = client.request(method, path.replace("{pid}", pid), content=body,
                           headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text[:300])
    assert len(reply.content) < 2000, (reply.status_code, len(reply.content))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_two_authorization_headers_are_a_400(api, method):
    """GET read the first header and POST (the body-limit middleware) the last: one request could
    pass as two different callers."""
    client, key, _ = api
    for pair in ([f"Bearer {key}", "Bearer sp_someone_else"], ["Bearer sp_someone_else", f"Bearer {key}"],
                 [f"Bearer {key}", f"Bearer {key}"]):
        headers = [("Authorization", value) for value in pair] + [("Content-Type", "application/json")]
        reply = client.request(method, "/api/v1/portfolios", headers=headers,
                               content=b'{"name": "n", "equity": 1}' if method == "POST" else None)
        assert reply.status_code == 400 and "Authorization" in reply.json()["detail"], reply.text
    assert client.get("/api/v1/portfolios", headers={"Authorization": f"Bearer {key}"}).status_code == 200


_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']|spec-url=["']([^"']+)""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_only_assets_of_the_package(api, page):
    client, _, _ = api
    html = client.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assert "http://" not in html.text and "https://" not in html.text, re.findall(r"https?://\S+", html.text)
    references = {next(g for g in m.groups() if g) for m in _REFERENCE.finditer(html.text)}
    assert references, html.text
    assert any(r.endswith(".js") for r in references)
    for reference in references:
        assert reference.startswith("/"), reference  # same server, no CDN
        asset = client.get(reference)
        assert asset.status_code == 200 and asset.content, reference
    if page == "/docs":
        assert '"validatorUrl": null' in html.text  # no badge image from validator.swagger.io


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_logs_hold_no_sql_parameters(new_pg_database, tmp_path):
    """`symbol-pipeline serve` at its default level, a statement that fails while writing a position
    and one that fails while checking a key: the tracebacks name the SQL, never its parameters."""
    url = new_pg_database("sp_hygiene")
    engine = get_engine(url)
    user = svc.create_user(engine, "logged")
    keys = [svc.issue_api_key(engine, "logged") for _ in range(2)]
    pf = svc.create_portfolio(engine, user.id, "p", 100_000)
    port, log = _free_port(), tmp_path / "server.log"
    env = {**os.environ, "SYMBOL_PIPELINE_DATA_DIR": str(tmp_path / "data")}
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "symbol_pipeline.cli", "serve", "--database-url", url,
                                   "--port", str(port)], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {keys[0]}"}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/api/v1/portfolios", headers=auth, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with engine.begin() as conn:  # the next position write fails inside the server
            conn.execute(sa.text("ALTER TABLE position_quantities RENAME TO position_quantities_gone"))
        failed = httpx.post(f"{base}/api/v1/positions", headers=auth, timeout=10,
                            json={"portfolio_id": pf["id"], "symbol": "ZQXW", "quantity": 123457.25})
        with engine.begin() as conn:  # and the next key lookup (the second key is not remembered yet)
            conn.execute(sa.text("ALTER TABLE api_keys RENAME TO api_keys_gone"))
        unchecked = httpx.get(f"{base}/api/v1/portfolios", headers={"Authorization": f"Bearer {keys[1]}"}, timeout=10)
        assert failed.status_code >= 500 and unchecked.status_code >= 500  # the failures happened
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        engine.dispose()
    text = log.read_text()
    assert "position_quantities" in text and "api_keys" in text, text[-3000:]  # both tracebacks were logged
    for secret in (hashlib.sha256(keys[1].encode()).hexdigest(), keys[1], "ZQXW", "123457.25", "[parameters:"):
        assert secret not in text, (secret, text[-3000:])
