"""The analytics cache: what a cached document is keyed by, the one-round-trip lookup, and invalidation.

An exposures entry is keyed by the portfolio's version (bumped by every change in the change's
own transaction) and the dates of the closes and betas it comes from; a stress entry by its
exposures key, the calculation date and the scenarios.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Engine

from symbol_pipeline.lib import stress as stress_lib
from symbol_pipeline.services.portfolio.book import parse_portfolio_id
from symbol_pipeline.services.portfolio.documents import iso
from symbol_pipeline.services.portfolio.errors import KeyRevokedError, NotFoundError
from symbol_pipeline.storage.portfolio import cache as store
from symbol_pipeline.storage.portfolio import now

CACHE_EXPOSURES = "factor_exposures"
CACHE_STRESS = "stress_test"
DEFAULT_CACHE_TTL = dt.timedelta(hours=24)


def exposure_cache_key(version: int, prices_date: Any, betas_date: Any, as_of: Any) -> str:
    """The exposures cache key: the portfolio's version (bumped by every position or equity change in
    the change's transaction) and the dates of the closes and betas the figures come from."""
    return f"v{int(version)}|{iso(prices_date)}|{iso(betas_date)}|{iso(as_of) or 'latest'}"


def _scenario_digest(scenarios: Sequence[stress_lib.Scenario]) -> str:
    return hashlib.sha256(repr([(s.name, sorted(s.shocks.items()), s.rates_bp) for s in scenarios]).encode()).hexdigest()


def stress_cache_key(exposure_key: str, calc_date: dt.date, scenarios: Sequence[stress_lib.Scenario]) -> str:
    return hashlib.sha256(f"{exposure_key}|{calc_date}|{_scenario_digest(scenarios)}".encode()).hexdigest()


def lookup_document(conn: Connection, portfolio_id: Any, cache_type: str, as_of: dt.date | None,
                    owner_id: int | None, key_of: Callable[[Any], str], key_hash: str | None = None):
    """(portfolio id, first row, cache key, cached text or None) in one round trip; raises for a
    portfolio that is missing or someone else's. `key_of(first row)` is the entry's key.

    With `key_hash` (the caller's key, hashed) the same round trip checks that the key is still
    unrevoked and `owner_id`'s: KeyRevokedError otherwise, before anything of the portfolio is told.
    """
    pid = parse_portfolio_id(portfolio_id)
    rows = store.cached_document(conn, pid, cache_type, as_of, now(), key_hash)
    if key_hash is not None and (rows[0].key_user is None or (owner_id is not None and rows[0].key_user != owner_id)):
        raise KeyRevokedError("the API key was revoked")
    if rows[0].owner_id is None or (owner_id is not None and rows[0].owner_id != owner_id):
        raise NotFoundError(f"portfolio {portfolio_id} not found")
    head = rows[0]
    key = key_of(head)
    cached = next((row.data for row in rows if row.cache_key == key), None)
    return pid, head, key, cached


def lookup_exposures(conn: Connection, portfolio_id: Any, as_of: dt.date | None, owner_id: int | None,
                     key_hash: str | None = None):
    """The exposures entry for as_of (see lookup_document). Equity is checked on a miss, on the
    holdings of as_of: an entry is only ever written for a positive equity."""
    return lookup_document(conn, portfolio_id, CACHE_EXPOSURES, as_of, owner_id,
                           lambda head: exposure_cache_key(head.version, head.prices_date, head.betas_date, as_of),
                           key_hash)


def read_stress(conn: Connection, portfolio_id: str, key: str) -> str | None:
    return store.read_cache(conn, portfolio_id, CACHE_STRESS, key, now())


def write_one(engine: Engine, portfolio_id: str, cache_type: str, key: str, text: str, ttl: dt.timedelta) -> None:
    """Store one portfolio's document in place of its older ones (after a cache miss), atomically."""
    store.replace_one(engine, portfolio_id, cache_type, key, text, now() + ttl)


def invalidate_portfolio_cache(engine: Engine, portfolio_id: Any) -> int:
    with engine.begin() as conn:
        return store.delete_cache(conn, parse_portfolio_id(portfolio_id))


def invalidate_all_caches(engine: Engine) -> int:
    """Drop every cached analytics entry: call after the daily symbol run has written new betas."""
    with engine.begin() as conn:
        return store.delete_cache(conn)
