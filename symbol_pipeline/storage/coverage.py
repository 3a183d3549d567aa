"""What is stored per (date, symbol): the facts behind Dagster's partition status.

A date × symbol partition of an asset counts as done exactly when one of these holds a row for
it: `symbol_prices` a price or a recorded gap (a session without a price although the fetch
succeeded), each beta asset a row of its factors of any quality, `symbol_daily_metrics` a row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.storage.dialect import read_frame, upsert_frame
from symbol_pipeline.storage.schema import (
    symbol_daily_metrics,
    symbol_factor_exposures,
    symbol_prices_daily,
    symbol_session_gaps,
)

# Above this many symbols a read filters by symbol in pandas: a long IN list costs more than it saves.
_IN_LIST_LIMIT = 500


def record_gaps(conn: Connection, gaps: pd.DataFrame) -> int:
    """Upsert (symbol, date, reason) rows."""
    if gaps.empty:
        return 0
    frame = gaps.loc[:, ["symbol", "date", "reason"]].copy()
    frame["recorded_at"] = dt.datetime.now(dt.timezone.utc)
    return upsert_frame(conn, symbol_session_gaps, frame)


def clear_priced_gaps(conn: Connection, start: dt.date, end: dt.date) -> int:
    """Delete the gaps in [start, end] that have a price now (a late price arrived)."""
    g, p = symbol_session_gaps.c, symbol_prices_daily.c
    priced = sa.select(sa.literal(1)).where(p.symbol == g.symbol, p.date == g.date).exists()
    return conn.execute(sa.delete(symbol_session_gaps).where(g.date >= start, g.date <= end, priced)).rowcount


def _pairs(conn: Connection, table: sa.Table, symbols: Sequence[str] | None, start: dt.date, end: dt.date,
           extra: Sequence[str] = ()) -> pd.DataFrame:
    c = table.c
    query = sa.select(c.symbol, c.date, *[c[name] for name in extra]).where(c.date >= start, c.date <= end)
    if symbols is not None and len(symbols) <= _IN_LIST_LIMIT:
        query = query.where(c.symbol.in_(list(symbols)))
    frame = read_frame(conn, query)
    if symbols is not None and len(symbols) > _IN_LIST_LIMIT:
        frame = frame[frame["symbol"].isin(set(symbols))]
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame.reset_index(drop=True)


def priced_keys(conn: Connection, symbols: Sequence[str] | None, start: dt.date, end: dt.date) -> pd.DataFrame:
    """(symbol, date) with a price in [start, end]."""
    return _pairs(conn, symbol_prices_daily, symbols, start, end)


def price_keys(conn: Connection, symbols: Sequence[str] | None, start: dt.date, end: dt.date) -> pd.DataFrame:
    """(symbol, date) with a price or a recorded gap, in [start, end]."""
    both = pd.concat([_pairs(conn, symbol_prices_daily, symbols, start, end),
                      _pairs(conn, symbol_session_gaps, symbols, start, end)])
    return both.drop_duplicates().reset_index(drop=True)


def gap_rows(conn: Connection, symbols: Sequence[str] | None, start: dt.date, end: dt.date) -> pd.DataFrame:
    """(symbol, date, reason) of the recorded gaps in [start, end]."""
    return _pairs(conn, symbol_session_gaps, symbols, start, end, extra=("reason",))


def beta_keys(conn: Connection, symbols: Sequence[str] | None, start: dt.date, end: dt.date) -> pd.DataFrame:
    """(symbol, date, factor) with a beta row of any quality, in [start, end]."""
    return _pairs(conn, symbol_factor_exposures, symbols, start, end, extra=("factor",))


def metric_keys(conn: Connection, symbols: Sequence[str] | None, start: dt.date, end: dt.date) -> pd.DataFrame:
    """(symbol, date) with a daily-metrics row, in [start, end]."""
    return _pairs(conn, symbol_daily_metrics, symbols, start, end)
