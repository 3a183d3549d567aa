"""Reads behind the asset checks: what a run's dates look like in the tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.lib import sessions
from symbol_pipeline.lib.returns import total_returns
from symbol_pipeline.storage import prices as price_store
from symbol_pipeline.storage.engine import read_frame
from symbol_pipeline.storage.schema import symbol_factor_exposures


def price_quality(conn: Connection, symbols: Sequence[str], dates: Sequence[dt.date]) -> dict:
    """Per run: non-positive closes, repeated closes, symbols without a close, one-day moves > 50%."""
    start = sessions.previous_session(min(dates))
    frame = price_store.read_prices(conn, symbols, start, max(dates))
    on_dates = frame[frame["date"].isin(pd.to_datetime(list(dates)))]
    grid = sessions.sessions_between(start, max(dates))
    returns = total_returns(frame, grid).loc[pd.to_datetime(list(dates))]
    closes = frame.pivot(index="date", columns="symbol", values="close").reindex(grid)
    repeated = (closes.diff() == 0).loc[pd.to_datetime(list(dates))]
    have = set(zip(on_dates["symbol"], on_dates["date"]))
    missing = sorted({s for s in symbols for d in dates if (s, pd.Timestamp(d)) not in have})
    absurd = returns.abs() > 0.5
    return {
        "non_positive": sorted(on_dates.loc[on_dates["close"] <= 0, "symbol"].unique()),
        "repeated": sorted(repeated.columns[repeated.any(axis=0)].tolist()),
        "missing": missing,
        "absurd": sorted(absurd.columns[absurd.any(axis=0)].tolist()),
    }


def beta_quality(
    conn: Connection, symbols: Sequence[str], dates: Sequence[dt.date], factors: Sequence[str]
) -> dict:
    """Per run: non-finite betas, and the share of symbols with a beta for every factor."""
    c = symbol_factor_exposures.c
    query = sa.select(c.symbol, c.date, c.factor, c.beta).where(
        c.date.in_(list(dates)), c.factor.in_(list(factors))
    )
    if len(symbols) <= 500:
        query = query.where(c.symbol.in_(list(symbols)))
    frame = read_frame(conn, query)
    frame = frame[frame["symbol"].isin(set(symbols))]
    values = frame["beta"].astype(float)
    non_finite = frame.loc[np.isinf(values), "symbol"].unique().tolist()
    covered = frame.loc[values.notna()].groupby(["symbol", "date"])["factor"].nunique()
    full = int((covered == len(factors)).sum())
    expected = max(1, len(symbols) * len(dates))
    return {"non_finite": sorted(non_finite), "coverage": full / expected, "expected": expected}
