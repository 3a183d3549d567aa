"""The symbol layer's work over "a set of dates × a set of symbols", independent of Dagster.

The Dagster assets call these with the dates and symbols of their run, so the partitioning can
change without touching the computation (docs/architecture.md, "Dagster at this scale"). Each step commits in batches:
a crash keeps what was done, and a rerun rewrites the same rows. Each step holds the run's
dates' locks (storage.locks) while it writes, so two runs never write the same dates at once,
whatever started them: the schedule, a backfill, the CLI or an onboarding sensor.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from symbol_pipeline.lib import sessions
from symbol_pipeline.lib.factor_model import compute_factor_exposures
from symbol_pipeline.lib.factors import (
    FACTORS,
    HISTORY_SESSIONS,
    QUALITY_CAPPED,
    QUALITY_INSUFFICIENT,
    REGRESSOR_ETFS,
    FactorSpec,
    with_regressor_etfs,
)
from symbol_pipeline.lib.gaps import session_gaps
from symbol_pipeline.lib.metrics import daily_metrics
from symbol_pipeline.lib.returns import closes_wide, total_returns
from symbol_pipeline.sources.base import PriceSource
from symbol_pipeline.storage import betas as beta_store
from symbol_pipeline.storage import coverage, universe
from symbol_pipeline.storage import prices as price_store
from symbol_pipeline.storage.locks import date_locks

# The 252-session return and the 63-session volatility of the daily metrics reach furthest back.
METRICS_SESSIONS = 253
PRICE_HISTORY_SESSIONS = max(HISTORY_SESSIONS, METRICS_SESSIONS)
# Symbols per fetch-and-commit batch: progress survives a crash at this granularity.
FETCH_BATCH = 1000

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def history_start(first_date: dt.date, sessions_back: int = PRICE_HISTORY_SESSIONS) -> dt.date:
    """The first session of the `sessions_back` sessions ending at `first_date`."""
    return sessions.sessions_ending(first_date, sessions_back)[0].date()


@dataclass
class PriceLoadReport:
    symbols_requested: int = 0
    symbols_fetched: int = 0
    rows_written: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    missing_on_date: dict[str, list[str]] = field(default_factory=dict)
    # Per symbol fetched without failure, the first session its fetch covered: every session
    # from there to the last date now holds a price or a recorded gap.
    fetched_from: dict[str, dt.date] = field(default_factory=dict)
    gaps_recorded: int = 0
    seconds: float = 0.0


def load_prices(
    engine: Engine,
    source: PriceSource,
    symbols: Sequence[str],
    dates: Sequence[dt.date],
    *,
    history_sessions: int = PRICE_HISTORY_SESSIONS,
    progress: Progress = _quiet,
    on_fetched: Callable[[pd.DataFrame], None] | None = None,
) -> PriceLoadReport:
    """Make sure the closes that `dates` need are stored for `symbols`, fetching what is missing.

    A raw-close source is asked only for symbols with missing sessions (see _missing_ranges).
    An adjusted-only source is asked for the whole window every time, because its history is
    restated after every dividend and split; mixing two adjustment bases would turn each
    dividend into a loss (docs/methodology.md).
    """
    started = time.perf_counter()
    report = PriceLoadReport(symbols_requested=len(symbols))
    if not symbols or not dates:
        return report
    with date_locks(engine, dates, wait_log=progress):
        start, end = history_start(min(dates), history_sessions), max(dates)
        needed = sessions.sessions_between(start, end)
        if source.adjusted_only:
            by_start = {start: list(symbols)}
        else:
            with engine.connect() as conn:
                coverage = price_store.stored_coverage(conn, symbols, start, end)
            by_start = _missing_ranges(symbols, coverage, needed)
        to_fetch = sum(len(group) for group in by_start.values())
        for first, group in sorted(by_start.items()):
            for offset in range(0, len(group), FETCH_BATCH):
                batch = group[offset : offset + FETCH_BATCH]
                result = source.fetch(batch, first, end)
                if on_fetched is not None:
                    on_fetched(result.prices)
                fetched = [s for s in batch if s not in result.failures]
                with engine.begin() as conn:
                    report.rows_written += price_store.write_prices(conn, result.prices, source.name)
                    price_store.record_fetch_failures(conn, result.failures, first, end, source.name)
                    report.gaps_recorded += _record_gaps(conn, fetched, needed[needed >= pd.Timestamp(first)])
                    report.fetched_from.update(dict.fromkeys(fetched, first))
                    if not result.prices.empty:
                        last = result.prices.groupby("symbol")["date"].max()
                        for day, names in last.groupby(last).groups.items():
                            universe.record_progress(conn, list(names), last_price_date=pd.Timestamp(day).date())
                report.symbols_fetched += len(batch)
                report.failures.update(result.failures)
                progress(f"prices: {report.symbols_fetched}/{to_fetch} symbols fetched from {source.name}")
    report.seconds = time.perf_counter() - started
    return report


def _record_gaps(conn, symbols: Sequence[str], grid: pd.DatetimeIndex) -> int:
    """Record the sessions of `grid` on which `symbols` (fetched without failure) have no price;
    drop recorded gaps that have a price now."""
    if not symbols or grid.empty:
        return 0
    start, end = grid[0].date(), grid[-1].date()
    priced = coverage.priced_keys(conn, symbols, start, end)
    coverage.clear_priced_gaps(conn, start, end)
    return coverage.record_gaps(conn, session_gaps(priced, symbols, [d.date() for d in grid]))


def ensure_regressor_prices(
    engine: Engine, source: PriceSource, symbols: Sequence[str], dates: Sequence[dt.date], progress: Progress = _quiet
) -> PriceLoadReport | None:
    """Load the window's prices when a date's regressor closes are not stored yet.

    The normal run stores them in its prices step. A beta or metric partition can also be
    targeted without its prices (the UI materialises any subset of the symbol assets); those
    betas fetch what they need here.
    """
    with engine.connect() as conn:
        stored = price_store.count_rows_on(conn, REGRESSOR_ETFS, dates)
    if stored == len(REGRESSOR_ETFS) * len(set(dates)):
        return None
    return load_prices(engine, source, with_regressor_etfs(symbols), dates, progress=progress)


def _missing_ranges(
    symbols: Sequence[str], coverage: pd.DataFrame, needed: pd.DatetimeIndex
) -> dict[dt.date, list[str]]:
    """Symbols to fetch, grouped by the date their fetch starts at.

    A symbol stored without holes up to some session is fetched from the next one (the daily
    case: one group starting at the new date); one with holes, or none stored, from the
    window's start. So there are at most a few groups, each one fetch per batch.
    """
    covered = coverage.reindex(list(symbols))
    first = needed.searchsorted(covered["first"].fillna(needed[0]).to_numpy())
    last = needed.searchsorted(covered["last"].fillna(needed[0]).to_numpy())
    rows = covered["rows"].astype(float).fillna(0).to_numpy()
    contiguous = (rows > 0) & (first == 0) & (rows == last - first + 1)
    complete = contiguous & (last == len(needed) - 1)
    groups: dict[dt.date, list[str]] = {}
    for symbol, is_contiguous, is_complete, position in zip(symbols, contiguous, complete, last):
        if is_complete:
            continue
        begin = needed[position + 1] if is_contiguous else needed[0]
        groups.setdefault(begin.date(), []).append(symbol)
    return groups


@dataclass
class WindowData:
    """Returns and closes on the session grid ending at the last date of a run."""

    returns: pd.DataFrame  # (sessions, symbols)
    closes: pd.DataFrame  # (sessions, symbols)
    etf_returns: pd.DataFrame  # (sessions, REGRESSOR_ETFS)


def load_window(engine: Engine, symbols: Sequence[str], dates: Sequence[dt.date], history: int) -> WindowData:
    """Closes and total returns of `symbols` and the regressor ETFs for the windows ending at `dates`."""
    start, end = history_start(min(dates), history), max(dates)
    grid = sessions.sessions_between(start, end)
    wanted = sorted(set(symbols) | set(REGRESSOR_ETFS))
    with engine.connect() as conn:
        prices = price_store.read_prices(conn, wanted, start, end)
    returns = total_returns(prices, grid).reindex(columns=wanted)
    closes = closes_wide(prices, grid).reindex(columns=wanted)
    return WindowData(returns=returns, closes=closes, etf_returns=returns.loc[:, list(REGRESSOR_ETFS)])


class MissingRegressorError(RuntimeError):
    """A regressor ETF has no close on a date being computed: no beta on that date can be right."""


@dataclass
class BetaReport:
    rows_written: int = 0
    symbols: int = 0
    dates: int = 0
    insufficient: int = 0
    capped: int = 0
    median_r_squared: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def compute_betas(
    engine: Engine,
    symbols: Sequence[str],
    dates: Sequence[dt.date],
    factors: Sequence[FactorSpec] = FACTORS,
    *,
    progress: Progress = _quiet,
) -> BetaReport:
    """Compute and store `factors` for every symbol on every date; one transaction per date."""
    started = time.perf_counter()
    report = BetaReport(symbols=len(symbols), dates=len(dates))
    if not symbols or not dates or not factors:
        return report
    with date_locks(engine, dates, wait_log=progress):
        history = max(f.window for f in factors) + 1
        data = load_window(engine, symbols, dates, history)
        symbol_returns = data.returns.loc[:, list(symbols)]
        r2: dict[str, list[float]] = {}
        for day in sorted(dates):
            stamp = pd.Timestamp(day)
            missing = [etf for etf in REGRESSOR_ETFS if np.isnan(data.closes.at[stamp, etf])]
            if missing:
                raise MissingRegressorError(
                    f"no close for regressor ETF(s) {', '.join(missing)} on {day}: load their prices first"
                )
            priced = data.closes.loc[stamp, list(symbols)].notna()
            rows = compute_factor_exposures(
                symbol_returns.loc[:stamp], data.etf_returns.loc[:stamp], stamp, factors=factors, priced_on_date=priced
            )
            with engine.begin() as conn:
                report.rows_written += beta_store.write_exposures(conn, day, rows)
                with_beta = rows.loc[rows["beta"].notna(), "symbol"].unique().tolist()
                universe.record_progress(conn, with_beta, last_factor_date=day)
            report.insufficient += int((rows["quality"] == QUALITY_INSUFFICIENT).sum())
            report.capped += int((rows["quality"] == QUALITY_CAPPED).sum())
            for name, group in rows.groupby("factor"):
                r2.setdefault(name, []).extend(group["r_squared"].dropna().tolist())
            progress(f"betas: {day} done ({len(symbols)} symbols, {len(factors)} factors)")
    report.median_r_squared = {k: float(np.median(v)) for k, v in r2.items() if v}
    report.seconds = time.perf_counter() - started
    return report


def compute_metrics(engine: Engine, symbols: Sequence[str], dates: Sequence[dt.date]) -> int:
    """symbol_daily_metrics for each date: returns, volatilities and the day's betas side by side."""
    if not symbols or not dates:
        return 0
    with date_locks(engine, dates):
        data = load_window(engine, symbols, dates, METRICS_SESSIONS)
        written = 0
        for day in sorted(dates):
            stamp = pd.Timestamp(day)
            metrics = daily_metrics(data.closes.loc[:stamp, list(symbols)], data.returns.loc[:stamp, list(symbols)], stamp)
            with engine.begin() as conn:
                betas = beta_store.read_exposures(conn, day, symbols if len(symbols) <= 500 else None)
                if not betas.empty:
                    wide = betas.pivot(index="symbol", columns="factor", values="beta")
                    metrics = metrics.join(wide.reindex(columns=[f.name for f in FACTORS]), how="left")
                written += beta_store.write_metrics(conn, day, metrics)
    return written


def etf_returns_on(engine: Engine, day: dt.date) -> dict[str, float]:
    """The regressor ETFs' total returns on `day` (NaN where a close is missing)."""
    data = load_window(engine, [], [day], 2)
    row = data.etf_returns.loc[pd.Timestamp(day)]
    return {etf: float(row[etf]) for etf in REGRESSOR_ETFS}
