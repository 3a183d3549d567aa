"""Symbols recover, through real Dagster runs on a CSV source whose files the test edits:
error → retried → active (a ticker whose file appears after its first fetch failed), and
active → delisted → active (a file that stops, then resumes): history kept, fetched while delisted,
regressed again once its prices are back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from symbol_pipeline.definitions import build_definitions
from symbol_pipeline.defs.symbols.sensors import onboarding_run_requests
from symbol_pipeline.lib.factors import REGRESSOR_ETFS
from symbol_pipeline.lib.sessions import sessions_ending
from symbol_pipeline.runs.keys import SYMBOL_DIMENSION
from symbol_pipeline.runs.submit import SYMBOL_LAYER_JOB, register_symbols, run_symbol_layer
from symbol_pipeline.services import onboarding
from symbol_pipeline.storage import universe
from symbol_pipeline.storage.schema import symbol_factor_exposures, symbol_prices_daily

pytestmark = pytest.mark.slow

LAST = dt.date(2024, 7, 3)
DAYS = sessions_ending(LAST, 300)
NOW = pd.Timestamp("2024-06-28 22:30", tz="UTC")  # after the close of Friday 2024-06-28


def _write(directory: Path, symbol: str, closes: np.ndarray, until: dt.date | None = None,
           resume: dt.date | None = None) -> None:
    frame = pd.DataFrame({"Date": DAYS.strftime("%Y-%m-%d"), "Adj Close": closes})
    keep = np.ones(len(DAYS), dtype=bool)
    if until is not None:
        keep &= (DAYS.date <= until) | ((DAYS.date >= resume) if resume else False)
    frame[keep].to_csv(directory / f"{symbol}.csv", index=False)


@pytest.fixture
def market(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(9)
    spy = rng.normal(0, 0.01, len(DAYS))
    walks = {etf: 100 * np.cumprod(1 + 0.8 * spy + rng.normal(0, 0.004, len(DAYS))) for etf in REGRESSOR_ETFS}
    walks["SPY"] = 100 * np.cumprod(1 + spy)
    for name in ("AAA", "NEWCO", "GONE"):
        walks[name] = 50 * np.cumprod(1 + 1.2 * spy + rng.normal(0, 0.01, len(DAYS)))
    directory = tmp_path / "prices"
    directory.mkdir()
    for name in (*REGRESSOR_ETFS, "AAA"):
        _write(directory, name, walks[name])
    return directory, walks


def _status(engine, symbol: str) -> str:
    with engine.connect() as conn:
        return universe.known_symbols(conn, [symbol])[symbol]


def _betas_on(engine, symbol: str, day: dt.date) -> int:
    t = symbol_factor_exposures
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(
            t.c.symbol == symbol, t.c.date == day, t.c.beta.is_not(None))).scalar()


def _onboard(engine, instance, defs, now: pd.Timestamp) -> None:
    """What symbol_onboarding_sensor and its `latest` run do (the history run is left out)."""
    plan = onboarding.plan_onboarding(engine, instance.get_dynamic_partitions(SYMBOL_DIMENSION), None, now=now,
                                      first_partition=dt.date(2023, 1, 3), reclaim=False)
    register_symbols(instance, plan.new_keys)
    job = defs.resolve_job_def(SYMBOL_LAYER_JOB)
    for request in onboarding_run_requests(plan):
        if request.tags["symbol_pipeline/onboarding_part"] == "latest":
            assert job.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False).success


def test_error_then_retried_then_active(sqlite_env, env_engine, instance, market, monkeypatch):
    directory, walks = market
    monkeypatch.setenv("SYMBOL_PIPELINE_PRICE_SOURCE", f"csv:{directory}")
    defs = build_definitions()
    register_symbols(instance, list(REGRESSOR_ETFS))
    with env_engine.begin() as conn:
        universe.enqueue_symbols(conn, ["NEWCO"], requested_by="cli", priority=universe.OPERATOR_PRIORITY)

    _onboard(env_engine, instance, defs, NOW)  # no file yet: the fetch fails
    assert _status(env_engine, "NEWCO") == "error"
    assert onboarding.requeue_due_retries(env_engine, NOW + pd.Timedelta(hours=5)) == []  # not due before 6 h

    _write(directory, "NEWCO", walks["NEWCO"])  # the source has it now
    assert onboarding.requeue_due_retries(env_engine, pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=7)) == ["NEWCO"]
    _onboard(env_engine, instance, defs, NOW)
    assert _status(env_engine, "NEWCO") == "active"
    assert _betas_on(env_engine, "NEWCO", dt.date(2024, 6, 28)) == 12


def test_active_then_delisted_then_active(sqlite_env, env_engine, instance, market, monkeypatch):
    directory, walks = market
    monkeypatch.setenv("SYMBOL_PIPELINE_PRICE_SOURCE", f"csv:{directory}")
    stopped = dt.date(2024, 6, 7)  # 15 sessions before 2024-06-28
    _write(directory, "GONE", walks["GONE"], until=stopped)
    defs = build_definitions()
    symbols = [*REGRESSOR_ETFS, "AAA", "GONE"]
    with env_engine.begin() as conn:
        universe.add_symbols(conn, ["AAA", "GONE"], status=universe.STATUS_ACTIVE)
    register_symbols(instance, symbols)

    def run(day: dt.date) -> None:
        assert run_symbol_layer(instance, defs, day, day, symbols).success

    run(dt.date(2024, 6, 28))  # the first run stores GONE's history: its last price is 2024-06-07
    assert _status(env_engine, "GONE") == "active"
    run(dt.date(2024, 7, 1))  # 16 sessions without a price while the market traded
    assert _status(env_engine, "GONE") == "delisted"
    assert _betas_on(env_engine, "GONE", dt.date(2024, 7, 1)) == 0  # not regressed
    with env_engine.connect() as conn:  # history kept
        assert str(conn.execute(sa.select(sa.func.max(symbol_prices_daily.c.date))
                            .where(symbol_prices_daily.c.symbol == "GONE")).scalar())[:10] == stopped.isoformat()
    assert _betas_on(env_engine, "AAA", dt.date(2024, 7, 1)) == 12

    _write(directory, "GONE", walks["GONE"], until=stopped, resume=dt.date(2024, 7, 2))  # trading again
    run(dt.date(2024, 7, 2))  # still fetched while delisted: its new price makes it active
    assert _status(env_engine, "GONE") == "active"
    run(dt.date(2024, 7, 3))
    assert _betas_on(env_engine, "GONE", dt.date(2024, 7, 3)) > 0
