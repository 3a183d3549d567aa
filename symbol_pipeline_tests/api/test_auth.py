"""One key check per request (api/auth.py): the middleware authenticates, every route reads its result."""

from __future__ import annotations

import httpx
import pytest

from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.api.routes import analytics
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline_tests.api.conftest import served


@pytest.fixture
def api(tmp_path, monkeypatch):
    app = create_app(ApiSettings(database_url=f"sqlite:///{tmp_path / 'api.sqlite'}", data_dir=tmp_path))
    engine = app.state.engine
    alice = svc.create_user(engine, "alice")
    key = svc.issue_api_key(engine, "alice")
    pf = svc.create_portfolio(engine, alice.id, "main", 1000)
    checks: list[str] = []
    remembered = svc.remembered_user
    monkeypatch.setattr(svc, "remembered_user", lambda k, *within: checks.append(k) or remembered(k, *within))
    with served(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        client.app_engine = engine
        yield client, {"Authorization": f"Bearer {key}"}, pf, checks


def test_each_request_checks_its_key_once_whatever_the_route(api):
    client, auth, pf, checks = api
    for method, path, body in (
        ("GET", "/api/v1/portfolios", None),                                              # deps.Caller
        ("GET", f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures", None),        # analytics.Reader
        ("POST", "/api/v1/portfolios", {"name": "second", "equity": 10}),                 # with a body
    ):
        checks.clear()
        reply = client.request(method, path, json=body, headers=auth)
        assert reply.status_code < 300, (path, reply.text)
        assert len(checks) == 1, path


def test_no_valid_key_is_a_401_with_or_without_a_body(api):
    client, _, pf, checks = api
    for headers in ({}, {"Authorization": "Bearer sp_wrong"}, {"Authorization": "Basic abc"}):
        for method, path, body in (("GET", "/api/v1/portfolios", None),
                                   ("GET", f"/api/v1/analytics/portfolio/{pf['id']}/factor-exposures", None),
                                   ("POST", "/api/v1/portfolios", {"name": "x", "equity": 1})):
            reply = client.request(method, path, json=body, headers=headers)
            assert reply.status_code == 401 and reply.headers["www-authenticate"] == "Bearer", (path, headers)
    # Only a bearer key is looked up; the others are refused without a lookup.
    assert set(checks) == {"sp_wrong"}


def test_an_analytics_read_refuses_a_revoked_key_its_process_still_remembers(api):
    """The analytics GETs accept a key from an hour-old memory (no lookup of their own) because their
    read checks the key in its own round trip: a key revoked by another process (the CLI) is a 401
    on the next read, and forgotten."""
    client, auth, pf, checks = api
    engine = client.app_engine
    paths = [f"/api/v1/analytics/portfolio/{pf['id']}/{tail}"
             for tail in ("factor-exposures", "risk", "stress-test", "factor-exposures/history")]
    assert client.get(paths[0], headers=auth).status_code == 200  # remembered from here on
    key = auth["Authorization"].split()[1]
    with engine.begin() as conn:  # revoked behind the process's back: its memory is not cleared
        conn.exec_driver_sql("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP")
    assert svc.remembered_user(key, 3600) is not None
    for path in paths:
        reply = client.get(path, headers=auth)
        assert reply.status_code == 401 and reply.headers["www-authenticate"] == "Bearer", (path, reply.text)
    assert svc.remembered_user(key, 3600) is None
    assert client.get("/api/v1/portfolios", headers=auth).status_code == 401


def test_every_analytics_get_route_checks_the_key_in_its_read():
    """A GET under the analytics prefix is answered from the long memory (analytics.checks_key): each
    such route must pass the key to its service, which the test above shows for the four there are."""
    app = create_app(ApiSettings(database_url="sqlite://", data_dir="."))
    routes = sorted(path for path, methods in app.openapi()["paths"].items()
                    if "get" in methods and analytics.checks_key("GET", path))
    assert routes == sorted(f"{analytics.ANALYTICS_PREFIX}/{{portfolio_id}}/{tail}"
                            for tail in ("factor-exposures", "risk", "stress-test", "factor-exposures/history"))
