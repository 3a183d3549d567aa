"""Users and API keys: keys stored hashed, revocable, remembered briefly by the process."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.services.portfolio import accounts
from symbol_pipeline_tests.portfolio_data import seed_symbols


@pytest.fixture
def book(engine):
    seed_symbols(engine, {"AAA": {"market_beta": 1.0}}, {"AAA": 10.0})
    user = svc.create_user(engine, "bob")
    return engine, user, svc.create_portfolio(engine, user.id, "b", 1000)


def test_api_keys_hashed_and_revocable(book):
    engine, user, _ = book
    key = svc.issue_api_key(engine, "bob")
    assert svc.authenticate(engine, key).id == user.id
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT key_hash FROM api_keys")).scalars().all()
    assert key not in stored and len(stored[0]) == 64
    svc.revoke_api_key(engine, prefix=key[:11])
    assert svc.authenticate(engine, key) is None


def test_accepted_keys_are_remembered_briefly_and_forgotten_on_revoke(book, monkeypatch):
    engine, user, _ = book
    key = svc.issue_api_key(engine, "bob")
    assert svc.authenticate(engine, key).id == user.id
    # A revocation by another process (straight in the table) is seen once the memory expires.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP"))
    assert svc.authenticate(engine, key).id == user.id
    later = accounts.time.monotonic() + svc.DEFAULT_AUTH_CACHE_SECONDS + 1
    monkeypatch.setattr(accounts.time, "monotonic", lambda: later)
    assert svc.authenticate(engine, key) is None


def test_revoke_through_the_service_takes_effect_at_once(book):
    engine, user, _ = book
    key = svc.issue_api_key(engine, "bob")
    assert svc.authenticate(engine, key).id == user.id
    svc.revoke_api_key(engine, key)
    assert svc.authenticate(engine, key) is None
    assert svc.authenticate(engine, "sp_never_issued") is None
