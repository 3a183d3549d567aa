"""Reads behind the asset checks: what a run's dates look like in the tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.lib import sessions
from symbol_pipeline.storage import prices as price_store
from symbol_pipeline.storage.dialect import read_frame
from symbol_pipeline.storage.schema import symbol_factor_exposures


def read_run_prices(conn: Connection, symbols: Sequence[str], dates: Sequence[dt.date]) -> pd.DataFrame:
    """Prices of `symbols` from the session before the run's first date to its last (one more
    session than the dates, for the first date's return); see `lib.returns.price_anomalies`."""
    return price_store.read_prices(conn, symbols, sessions.previous_session(min(dates)), max(dates))


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
