"""Reads behind holdings at a date: the effective-dated quantity and equity rows, the splits that
scale recorded quantities, and closes and betas over a range of dates for the exposure history.

Dates leave here as numpy day numbers (int64 days since 1970-01-01) where the caller computes
with them, so that no Python date object is made per row.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.storage import session_betas
from symbol_pipeline.storage.dialect import IN_LIMIT, chunks, copy_binary, is_postgres, read_frame
from symbol_pipeline.storage.portfolio_schema import (
    PortfolioId,
    portfolio_equity,
    portfolios,
    position_quantities,
    positions,
)
from symbol_pipeline.storage.schema import symbol_factor_exposures, symbol_prices_daily

HOLDING_COLUMNS = ["portfolio_id", "position_id", "symbol", "entry_price", "exit_date", "row_id",
                   "effective_date", "quantity"]
EQUITY_COLUMNS = ["portfolio_id", "row_id", "effective_date", "equity"]
# A close or beta older than this many days before a range's start is looked up per symbol in a
# second query: nearly every symbol has one within it.
_LOOKBACK_DAYS = 10


def day_numbers(values) -> np.ndarray:
    """Dates (date objects, ISO text, None) as int64 days since 1970-01-01; missing ones as NaT's int."""
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    try:  # numpy converts dates, datetimes, ISO text and None directly: no pandas parse per call
        return array.astype("datetime64[D]").astype(np.int64)
    except (TypeError, ValueError):  # anything else (NaN for a missing date, other text forms)
        return pd.to_datetime(pd.Series(array, dtype=object)).to_numpy(dtype="datetime64[D]").astype(np.int64)


def _frame(conn: Connection, stmt: sa.Select, columns: list[str], big: bool) -> pd.DataFrame:
    if big and is_postgres(conn):
        frame = read_frame(conn, stmt)
        frame.columns = columns
        return frame
    return pd.DataFrame(conn.execute(stmt).all(), columns=columns)


def _holding_stmt() -> sa.Select:
    q = position_quantities.c
    return (
        sa.select(positions.c.portfolio_id, positions.c.id, positions.c.symbol, positions.c.entry_price,
                  positions.c.exit_date, q.id, q.effective_date, q.quantity)
        .join(position_quantities, q.position_id == positions.c.id)
    )


@lru_cache(maxsize=1)
def _one_portfolio_stmt() -> sa.Select:
    """Built once: on a cache miss, building and hashing a statement costs more than running it."""
    return _holding_stmt().where(positions.c.portfolio_id == sa.bindparam("pid", type_=PortfolioId))


def portfolio_owner(conn: Connection, portfolio_id: str) -> int | None:
    return conn.execute(sa.select(portfolios.c.owner_id).where(portfolios.c.id == portfolio_id)).scalar()


def holding_rows(conn: Connection, portfolio_ids: Sequence[str] | None) -> pd.DataFrame:
    """Every quantity row of the positions of these portfolios (all when None): columns HOLDING_COLUMNS."""
    if portfolio_ids is not None and len(portfolio_ids) == 1:
        rows = conn.execute(_one_portfolio_stmt(), {"pid": portfolio_ids[0]}).all()
        return pd.DataFrame(rows, columns=HOLDING_COLUMNS)
    stmt = _holding_stmt()
    if portfolio_ids is None:
        return _frame(conn, stmt, HOLDING_COLUMNS, big=True)
    frames = [_frame(conn, stmt.where(positions.c.portfolio_id.in_(chunk)), HOLDING_COLUMNS, len(chunk) > 50)
              for chunk in chunks(list(portfolio_ids))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=HOLDING_COLUMNS)


def equity_rows(conn: Connection, portfolio_ids: Sequence[str] | None) -> pd.DataFrame:
    """Every equity row of these portfolios (all when None): columns EQUITY_COLUMNS."""
    e = portfolio_equity.c
    stmt = sa.select(e.portfolio_id, e.id, e.effective_date, e.equity)
    if portfolio_ids is None:
        return _frame(conn, stmt, EQUITY_COLUMNS, big=True)
    frames = [_frame(conn, stmt.where(e.portfolio_id.in_(chunk)), EQUITY_COLUMNS, len(chunk) > 50)
              for chunk in chunks(list(portfolio_ids))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=EQUITY_COLUMNS)


def split_rows(conn: Connection, symbols: Sequence[str], after: dt.date, until: dt.date | None) -> pd.DataFrame:
    """Splits (split_ratio <> 1) of `symbols` effective in (after, until]: columns symbol, date, split_ratio."""
    px = symbol_prices_daily
    cond = [px.c.split_ratio != 1.0, px.c.date > after]
    if until is not None:
        cond.append(px.c.date <= until)
    stmt = sa.select(px.c.symbol, px.c.date, px.c.split_ratio).where(*cond)
    if len(symbols) > IN_LIMIT:  # the partial index on splits makes every split cheap to read
        frame = _frame(conn, stmt, ["symbol", "date", "split_ratio"], big=True)
        return frame[frame["symbol"].isin(set(symbols))]
    rows = conn.execute(stmt.where(px.c.symbol.in_(list(symbols)))).all() if symbols else []
    return pd.DataFrame(rows, columns=["symbol", "date", "split_ratio"])


# --- closes and betas over a range of dates ---------------------------------------------------


def _day_number(conn: Connection, column: sa.Column) -> sa.ColumnElement:
    """The date as its day number, computed by the database: no date object per row in Python."""
    if is_postgres(conn):
        return sa.literal_column(f"({column.table.name}.{column.name} - DATE '1970-01-01')", sa.Integer).label("day")
    return sa.cast(sa.func.julianday(column) - 2440587.5, sa.Integer).label("day")


def _stacked(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([first, second], ignore_index=True) if len(second) else first


def _coded(frame: pd.DataFrame, symbols: Sequence[str]) -> pd.DataFrame:
    """Rows with symbol (and factor) text replaced by their index in `symbols` (FACTOR_NAMES)."""
    out = frame.assign(symbol=pd.Index(list(symbols)).get_indexer(frame["symbol"]))
    if "factor" in out:
        out = out.assign(factor=pd.Index(FACTOR_NAMES).get_indexer(out["factor"]))
        out = out[out["factor"] >= 0]
    return out


# One row per symbol: its dates and closes as two arrays (see _array_rows), read from one
# primary-key range per symbol (LATERAL, whatever the planner makes of the date index).
_CLOSES_SQL = (
    "SELECT s.code::int4, p.days, p.closes "
    "FROM unnest(%(symbols)s::text[]) WITH ORDINALITY AS s(symbol, code) "
    f"CROSS JOIN LATERAL (SELECT array_agg(date) AS days, array_agg(close) AS closes FROM {symbol_prices_daily.name} "
    "WHERE symbol = s.symbol AND date >= %(since)s AND date <= %(end)s) p WHERE p.days IS NOT NULL"
)
_PG_EPOCH_DAYS = 10957  # a binary date is days since 2000-01-01


def _array_rows(body: memoryview) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code, day, value) per element, from a binary COPY of rows (int4 code, date[], float8[]).

    A row is an int16 field count, then per field an int32 length and the value; an array is
    ndim, flags, element oid, size and lower bound (int32 each), then per element an int32 length
    and the big-endian value (NULL-free, one dimension). The walk only finds where each array's
    elements start; the values are gathered in one vectorised step.
    """
    rows = []  # (code, first day element, count, first value element)
    pos, end = 19, len(body) - 2  # after the header, before the trailer
    while pos < end:
        code, day_length = struct.unpack_from(">ii", body, pos + 6)
        count = struct.unpack_from(">i", body, pos + 26)[0] if day_length > 12 else 0
        day_at, pos = pos + 34, pos + 14 + day_length
        (value_length,) = struct.unpack_from(">i", body, pos)
        rows.append((code, day_at, count, pos + 24))
        pos += 4 + value_length
    code, day_at, count, value_at = np.array(rows, dtype=np.int64).reshape(-1, 4).T
    raw = np.frombuffer(body, dtype=np.uint8)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)  # element index within its array

    def gather(starts: np.ndarray, width: int, kind: str) -> np.ndarray:
        at = np.repeat(starts, count) + k * (4 + width) + 4  # skip each element's length
        return raw[at[:, None] + np.arange(width)].view(kind).ravel()

    day = gather(day_at, 4, ">i4").astype(np.int64) + _PG_EPOCH_DAYS
    return np.repeat(code, count), day, gather(value_at, 8, ">f8").astype(float)


def close_history(conn: Connection, symbols: Sequence[str], start: dt.date, end: dt.date) -> pd.DataFrame:
    """Closes of `symbols` on [start, end] and each symbol's latest close before start.

    Columns symbol (index into `symbols`), day (int64 day number), close. The latest close before
    start is looked up per symbol only for symbols without one shortly before start.
    """
    px = symbol_prices_daily
    columns = ["symbol", "day", "close"]
    since = start - dt.timedelta(days=_LOOKBACK_DAYS)
    if is_postgres(conn) and symbols:
        code, day, close = _array_rows(copy_binary(conn, _CLOSES_SQL, {"symbols": list(symbols), "since": since,
                                                                        "end": end}))
        frame = pd.DataFrame({"symbol": code - 1, "day": day, "close": close})
    else:
        rows = [r for chunk in chunks(list(symbols)) for r in conn.execute(
            sa.select(px.c.symbol, _day_number(conn, px.c.date), px.c.close)
            .where(px.c.symbol.in_(chunk), px.c.date >= since, px.c.date <= end)).all()]
        frame = _coded(pd.DataFrame(rows, columns=columns), symbols)
    start_day = int(day_numbers([start])[0])
    have = set(frame.loc[frame["day"].to_numpy(dtype=np.int64) <= start_day, "symbol"].tolist())
    for chunk in chunks([s for i, s in enumerate(symbols) if i not in have]):
        newest = (sa.select(px.c.symbol, sa.func.max(px.c.date).label("d"))
                  .where(px.c.symbol.in_(chunk), px.c.date < since).group_by(px.c.symbol).subquery())
        older = conn.execute(sa.select(px.c.symbol, _day_number(conn, px.c.date), px.c.close)
                             .join(newest, sa.and_(px.c.symbol == newest.c.symbol, px.c.date == newest.c.d))).all()
        frame = _stacked(_coded(pd.DataFrame(older, columns=columns), symbols), frame) if older else frame
    return frame.astype({"symbol": np.int64, "day": np.int64, "close": float})


def beta_history(conn: Connection, symbols: Sequence[str], start: dt.date, end: dt.date) -> pd.DataFrame:
    """Non-NULL betas of `symbols` on [start, end], and each symbol's latest non-NULL beta per factor
    before start. Columns symbol (index into `symbols`), day (int64 day number), factor (index into
    FACTOR_NAMES), beta: one row per stored beta.

    About S × T × 12 rows: on PostgreSQL read from symbol_session_betas (one row per symbol and
    session), elsewhere from the covering ix_symbol_factor_exposures_history.
    """
    t = symbol_factor_exposures
    columns = ["symbol", "day", "factor", "beta"]
    since = start - dt.timedelta(days=_LOOKBACK_DAYS)
    select = sa.select(t.c.symbol, _day_number(conn, t.c.date), t.c.factor, t.c.beta)
    if is_postgres(conn) and symbols:
        code, day, factor, beta = session_betas.read_betas(conn, symbols, since, end)
        frame = pd.DataFrame({"symbol": code, "day": day, "factor": factor, "beta": beta})
    else:
        rows = [r for chunk in chunks(list(symbols)) for r in conn.execute(
            select.where(t.c.symbol.in_(chunk), t.c.date >= since, t.c.date <= end, t.c.beta.is_not(None))).all()]
        frame = _coded(pd.DataFrame(rows, columns=columns), symbols)
    start_day = int(day_numbers([start])[0])
    early = frame[frame["day"].to_numpy(dtype=np.int64) <= start_day]
    pairs = early.groupby("symbol")["factor"].nunique() if len(early) else pd.Series(dtype=int)
    behind = [s for i, s in enumerate(symbols) if pairs.get(i, 0) < len(FACTOR_NAMES)]
    for chunk in chunks(behind):
        newest = (sa.select(t.c.symbol, t.c.factor, sa.func.max(t.c.date).label("d"))
                  .where(t.c.symbol.in_(chunk), t.c.date < since, t.c.beta.is_not(None))
                  .group_by(t.c.symbol, t.c.factor).subquery())
        older = conn.execute(select.join(newest, sa.and_(t.c.symbol == newest.c.symbol, t.c.factor == newest.c.factor,
                                                         t.c.date == newest.c.d))).all()
        frame = _stacked(_coded(pd.DataFrame(older, columns=columns), symbols), frame) if older else frame
    return frame.astype({"symbol": np.int64, "day": np.int64, "factor": np.int64, "beta": float})


def beta_dates_span(conn: Connection, start: dt.date, end: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """(latest date on or before start, earliest date in (start, end]) with any non-NULL beta:
    the sessions of [start, end] before the first such date have no betas stored on or before them."""
    t = symbol_factor_exposures
    before = sa.select(sa.func.max(t.c.date)).where(t.c.date <= start, t.c.beta.is_not(None)).scalar_subquery()
    after = (sa.select(sa.func.min(t.c.date))
             .where(t.c.date > start, t.c.date <= end, t.c.beta.is_not(None)).scalar_subquery())
    row = conn.execute(sa.select(before.label("before"), after.label("after"))).first()
    return row.before, row.after
