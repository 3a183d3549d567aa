"""One key check per request (api/auth.py): the middleware authenticates, every route reads its result."""

from __future__ import annotations

import httpx
import pytest

from symbol_pipeline.api.app import ApiSettings, create_app
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
    monkeypatch.setattr(svc, "remembered_user", lambda k: checks.append(k) or remembered(k))
    with served(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
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
