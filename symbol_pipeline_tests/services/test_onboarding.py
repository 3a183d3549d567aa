"""Onboarding limits and symbol recovery on both backends: the per-user daily cap and priorities,
failed fetches retried with backoff, operators' retries and rejections, delisting and return."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from symbol_pipeline.lib.factors import REGRESSOR_ETFS
from symbol_pipeline.lib.sessions import session_offset
from symbol_pipeline.services import onboarding
from symbol_pipeline.services import symbols as symbol_service
from symbol_pipeline.storage import coverage, universe
from symbol_pipeline.storage.onboarding import claim_batch, fail_processing, queue_rows
from symbol_pipeline.storage.schema import symbol_prices_daily, symbol_universe

MARKET = dt.date(2024, 6, 28)  # a Friday session
NOW = dt.datetime(2024, 6, 28, 22, 0, tzinfo=dt.timezone.utc)


def _status(engine, symbol):
    with engine.connect() as conn:
        return conn.execute(sa.select(symbol_universe).where(symbol_universe.c.symbol == symbol)).one()


def _prices(engine, symbol, last: dt.date, sessions: int = 5):
    days = [session_offset(last, -i) for i in range(sessions)]
    with engine.begin() as conn:
        conn.execute(symbol_prices_daily.insert(),
                     [{"symbol": symbol, "date": d, "close": 10.0 + i, "source": "test"} for i, d in enumerate(days)])
        universe.record_progress(conn, [symbol], last_price_date=last)


def _fetched_without_price(engine, symbol, after: dt.date, until: dt.date):
    """The `no_price` sessions a run's fetch records for `symbol` after its last price."""
    days, day = [], session_offset(after, 1)
    while day <= until:
        days.append(day)
        day = session_offset(day, 1)
    with engine.begin() as conn:
        coverage.record_gaps(conn, pd.DataFrame({"symbol": symbol, "date": days, "reason": "no_price"}))


def _market_traded_until(engine, day: dt.date):
    with engine.begin() as conn:
        universe.seed_reference_data(conn)  # the ETFs (a truncated PostgreSQL database has none)
        universe.record_progress(conn, list(REGRESSOR_ETFS), last_price_date=day)


# --- the daily cap and priorities ---------------------------------------------------------------


def test_a_users_requests_are_capped_per_day_and_below_operators(engine):
    with engine.begin() as conn:
        universe.enqueue_symbols(conn, ["OPS1"], requested_by="cli", priority=universe.OPERATOR_PRIORITY)
    with universe.capped_requests(3):
        with engine.begin() as conn:
            assert universe.enqueue_symbols(conn, ["U1", "U2"], requested_by="api:alice", priority=50) == ["U1", "U2"]
        with pytest.raises(universe.OnboardingLimitError, match="at most 3 new symbols a day"):
            with engine.begin() as conn:
                universe.enqueue_symbols(conn, ["U3", "U4"], requested_by="api:alice")
        with engine.begin() as conn:  # known symbols cost nothing; another user has their own count
            assert universe.enqueue_symbols(conn, ["U1", "U3"], requested_by="api:alice") == ["U3"]
            assert universe.enqueue_symbols(conn, ["B1", "B2", "B3"], requested_by="api:bob") == ["B1", "B2", "B3"]
    with engine.begin() as conn:  # outside a user's request (the operator's CLI): no cap
        assert universe.enqueue_symbols(conn, ["U4", "U5"], requested_by="api:alice") == ["U4", "U5"]
    rows = {r["symbol"]: r for r in queue_rows(engine)}
    assert "U4" in rows and rows["U1"]["priority"] == universe.USER_PRIORITY  # 50 asked, user priority given
    assert [r.symbol for r in claim_batch(engine, 1)] == ["OPS1"]  # the operator's request goes first
    with engine.connect() as conn:
        assert universe.known_symbols(conn, ["U4"])["U4"] == "pending"


def test_a_request_over_the_cap_writes_nothing(engine):
    with pytest.raises(universe.OnboardingLimitError), universe.capped_requests(1), engine.begin() as conn:
        universe.enqueue_symbols(conn, ["N1", "N2"], requested_by="api:carol")
    assert queue_rows(engine) == []
    with engine.connect() as conn:
        assert universe.known_symbols(conn, ["N1", "N2"]) == {}


# --- failures, retries with backoff, operators ------------------------------------------------------


def test_a_failed_fetch_is_retried_with_backoff_until_the_attempts_are_spent(engine):
    policy = onboarding.RecoveryPolicy(retry_attempts=2, retry_delay=dt.timedelta(hours=6))
    with engine.begin() as conn:
        universe.enqueue_symbols(conn, ["FLAKY"], requested_by="cli")
    now = NOW
    delays = []
    for attempt in (1, 2, 3):
        claim_batch(engine, 10)
        assert onboarding.fail_pending_without_prices(engine, {"FLAKY": "source timed out"}, policy) == ["FLAKY"]
        row = _status(engine, "FLAKY")
        assert row.status == "error" and row.retry_attempts == attempt
        assert row.error_message.startswith("source timed out")
        if attempt == 3:
            assert row.next_retry_at is None and "no automatic retry left" in row.error_message
            break
        retry_at = pd.Timestamp(row.next_retry_at).tz_convert("UTC") if pd.Timestamp(row.next_retry_at).tzinfo \
            else pd.Timestamp(row.next_retry_at).tz_localize("UTC")
        delays.append(retry_at.to_pydatetime() - dt.datetime.now(dt.timezone.utc))
        # Not yet due: nothing requeued; due: back in the queue at retry priority, attempts kept.
        assert onboarding.requeue_due_retries(engine, pd.Timestamp.now(tz="UTC")) == []
        now = retry_at + pd.Timedelta(seconds=1)
        assert onboarding.requeue_due_retries(engine, now) == ["FLAKY"]
        assert _status(engine, "FLAKY").status == "pending"
        assert queue_rows(engine)[-1]["requested_by"] == universe.RETRY_REQUESTER
    assert 5.9 < delays[0].total_seconds() / 3600 <= 6 and 11.9 < delays[1].total_seconds() / 3600 <= 12


def test_a_retried_symbol_that_gets_prices_is_active_and_its_count_cleared(engine):
    with engine.begin() as conn:
        universe.enqueue_symbols(conn, ["BACK"], requested_by="cli")
    onboarding.fail_pending_without_prices(engine, {"BACK": "HTTP 503"})
    assert symbol_service.retry_symbols(engine, ["BACK", "NOPE"], "cli") == {"requeued": ["BACK"], "not_retried": ["NOPE"]}
    assert queue_rows(engine)[-1]["priority"] == universe.OPERATOR_PRIORITY
    _prices(engine, "BACK", MARKET)
    _market_traded_until(engine, MARKET)
    assert onboarding.settle_pending(engine, ["BACK"]) == {"BACK": "active"}
    row = _status(engine, "BACK")
    assert (row.status, row.retry_attempts, row.next_retry_at, row.error_message) == ("active", 0, None, None)


def test_a_new_listing_with_too_little_history_is_active(engine):
    with engine.begin() as conn:
        universe.enqueue_symbols(conn, ["IPO"], requested_by="cli")
    _prices(engine, "IPO", MARKET, sessions=3)
    _market_traded_until(engine, MARKET)
    assert onboarding.settle_pending(engine, ["IPO", "SPY"]) == {"IPO": "active"}


def test_a_pending_symbol_without_any_price_is_an_error_with_a_retry(engine):
    with engine.begin() as conn:
        universe.enqueue_symbols(conn, ["GHOST"], requested_by="cli")
    assert onboarding.settle_pending(engine, ["GHOST"]) == {"GHOST": "error"}
    assert _status(engine, "GHOST").next_retry_at is not None


def test_a_failed_onboarding_run_schedules_a_retry(engine):
    with engine.begin() as conn:
        universe.enqueue_symbols(conn, ["RUNFAIL"], requested_by="cli")
    ids = [r.id for r in claim_batch(engine, 10)]
    assert fail_processing(engine, ids, "onboarding run abc failed") == 1
    row = _status(engine, "RUNFAIL")
    assert row.status == "error" and row.retry_attempts == 1 and row.next_retry_at is not None


def test_operators_list_and_reject_queued_or_failed_symbols(engine):
    with engine.begin() as conn:
        universe.enqueue_symbols(conn, ["SPAM1", "SPAM2"], requested_by="api:mallory", priority=1)
    onboarding.fail_pending_without_prices(engine, {"SPAM2": "unknown ticker"})
    listed = {r["symbol"]: r for r in symbol_service.symbol_queue(engine)}
    assert listed["SPAM1"]["status"] == "pending" and listed["SPAM1"]["requested_by"] == "api:mallory"
    assert listed["SPAM2"]["status"] == "error" and listed["SPAM2"]["retry_attempts"] == 1
    result = symbol_service.reject_symbols(engine, ["SPAM1", "SPAM2", "SPY"], "not a listed stock")
    assert result == {"rejected": ["SPAM1", "SPAM2"], "not_rejected": ["SPY"]}
    for symbol in ("SPAM1", "SPAM2"):
        row = _status(engine, symbol)
        assert row.status == "error" and row.next_retry_at is None and "not a listed stock" in row.error_message
    assert all(r["status"] == "failed" for r in queue_rows(engine))
    assert claim_batch(engine, 10) == []
    assert onboarding.requeue_due_retries(engine, NOW + dt.timedelta(days=30)) == []


# --- delisting and return ------------------------------------------------------------------------


def test_fetched_without_price_for_n_sessions_is_delisted_then_active_again(engine):
    with engine.begin() as conn:
        universe.add_symbols(conn, ["GONE", "FINE"], status="active")
    stopped = session_offset(MARKET, -10)
    _prices(engine, "GONE", stopped)
    _fetched_without_price(engine, "GONE", stopped, MARKET)  # 10 sessions
    _prices(engine, "FINE", session_offset(MARKET, -9))
    _fetched_without_price(engine, "FINE", session_offset(MARKET, -9), MARKET)  # 9 sessions
    _market_traded_until(engine, MARKET)
    scope = symbol_service.run_scope(engine, ["FINE", "GONE"], [MARKET], delisted_after_sessions=10)
    assert scope.delisted == ["GONE"] and scope.regress == ["FINE"] and scope.fetch_only == ["GONE"]
    row = _status(engine, "GONE")
    assert row.status == "delisted" and f"10 sessions since {stopped}" in row.error_message
    # A backfill of dates when it still traded regresses it.
    assert symbol_service.run_scope(engine, ["GONE"], [stopped]).regress == ["GONE"]
    # A new price: active again at once (still fetched every day, so this is how it returns).
    with engine.begin() as conn:
        universe.record_progress(conn, ["GONE"], last_price_date=MARKET)
    assert (_status(engine, "GONE").status, _status(engine, "GONE").error_message) == ("active", None)
    assert symbol_service.run_scope(engine, ["GONE"], [MARKET]).regress == ["GONE"]


def test_sessions_nobody_fetched_yet_are_no_evidence_of_delisting(engine):
    """A backfill's factor_returns loads the ETFs of all its dates before the run fetches the
    symbols, and daily runs may pause for weeks: a symbol whose last price is 21 sessions behind
    the market, but that no fetch found without a price, is regressed, not delisted."""
    with engine.begin() as conn:
        universe.add_symbols(conn, ["BEHIND"], status="active")
    _prices(engine, "BEHIND", session_offset(MARKET, -21))
    _market_traded_until(engine, MARKET)
    dates = [session_offset(MARKET, -i) for i in range(20, -1, -1)]
    scope = symbol_service.run_scope(engine, ["BEHIND"], dates, delisted_after_sessions=10)
    assert (scope.delisted, scope.regress, scope.fetch_only) == ([], ["BEHIND"], [])
    assert _status(engine, "BEHIND").status == "active"


def test_portfolios_are_told_which_held_symbols_are_unavailable(engine):
    with engine.begin() as conn:
        universe.add_symbols(conn, ["OK1"], status="active")
        universe.add_symbols(conn, ["DEAD"], status="delisted")
        universe.add_symbols(conn, ["BAD"], status="error")
    unavailable = symbol_service.unavailable_symbols(engine, ["OK1", "DEAD", "BAD"])
    assert unavailable == {"DEAD": "delisted", "BAD": "error"}
    texts = {"1": '{"portfolio_id":"1"}', "2": '{"portfolio_id":"2"}'}
    symbol_service.with_unavailable(texts, {"1": ["OK1", "DEAD", "BAD"], "2": ["OK1"]}, unavailable)
    assert texts == {"1": '{"portfolio_id":"1","unavailable_symbols":{"BAD":"error","DEAD":"delisted"}}',
                     "2": '{"portfolio_id":"2","unavailable_symbols":{}}'}


