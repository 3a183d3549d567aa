"""Daily prices: idempotent writes (a short re-fetch never deletes rows) and windowed reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.storage.dialect import read_frame, upsert_frame
from symbol_pipeline.storage.schema import symbol_fetch_failures, symbol_prices_daily

_VALUE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume", "dividend", "split_ratio")
# Above this many symbols a read filters by date in SQL and by symbol in pandas: a 10,000-item
# IN list costs more than the rows it would skip.
_IN_LIST_LIMIT = 500


def write_prices(conn: Connection, prices: pd.DataFrame, source: str) -> int:
    """Upsert price rows (PRICE_COLUMNS of sources.base); rows not in `prices` are left alone."""
    if prices.empty:
        return 0
    frame = prices.loc[:, ["symbol", "date", *_VALUE_COLUMNS]].copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    frame["dividend"] = frame["dividend"].fillna(0.0)
    frame["split_ratio"] = frame["split_ratio"].fillna(1.0)
    frame["source"] = source
    frame["updated_at"] = dt.datetime.now(dt.timezone.utc)
    frame = frame.drop_duplicates(["symbol", "date"], keep="last")
    return upsert_frame(conn, symbol_prices_daily, frame)


def _symbol_filter(query: sa.Select, symbols: Sequence[str] | None) -> sa.Select:
    if symbols is not None and len(symbols) <= _IN_LIST_LIMIT:
        query = query.where(symbol_prices_daily.c.symbol.in_(list(symbols)))
    return query


def read_prices(
    conn: Connection,
    symbols: Sequence[str] | None,
    start: dt.date,
    end: dt.date,
    columns: Sequence[str] = ("close", "dividend", "split_ratio"),
) -> pd.DataFrame:
    """Long frame (symbol, date as Timestamp, columns...) for sessions in [start, end]."""
    c = symbol_prices_daily.c
    query = sa.select(c.symbol, c.date, *[c[name] for name in columns]).where(c.date >= start, c.date <= end)
    frame = read_frame(conn, _symbol_filter(query, symbols))
    if symbols is not None and len(symbols) > _IN_LIST_LIMIT:
        frame = frame[frame["symbol"].isin(set(symbols))]
    frame["date"] = pd.to_datetime(frame["date"])
    for name in columns:
        frame[name] = frame[name].astype(np.float64)
    return frame.reset_index(drop=True)


def stored_coverage(conn: Connection, symbols: Sequence[str] | None, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Per symbol with rows in [start, end]: how many, the first and the last date (index symbol)."""
    c = symbol_prices_daily.c
    query = (
        sa.select(c.symbol, sa.func.count().label("rows"), sa.func.min(c.date).label("first"),
                  sa.func.max(c.date).label("last"))
        .where(c.date >= start, c.date <= end)
        .group_by(c.symbol)
    )
    frame = read_frame(conn, _symbol_filter(query, symbols))
    if symbols is not None and len(symbols) > _IN_LIST_LIMIT:
        frame = frame[frame["symbol"].isin(set(symbols))]
    frame["first"] = pd.to_datetime(frame["first"])
    frame["last"] = pd.to_datetime(frame["last"])
    return frame.set_index("symbol")


def record_fetch_failures(
    conn: Connection, failures: dict[str, str], start: dt.date, end: dt.date, source: str
) -> None:
    if failures:
        conn.execute(
            symbol_fetch_failures.insert(),
            [
                {"symbol": s, "requested_start": start, "requested_end": end, "source": source, "reason": r}
                for s, r in sorted(failures.items())
            ],
        )


def count_rows_on(conn: Connection, symbols: Sequence[str], dates: Sequence[dt.date]) -> int:
    """How many of the (symbol, date) pairs have a stored close."""
    c = symbol_prices_daily.c
    query = sa.select(sa.func.count()).where(c.symbol.in_(list(symbols)), c.date.in_(list(dates)))
    return int(conn.execute(query).scalar() or 0)
