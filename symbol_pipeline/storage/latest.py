"""The latest value on or before a date, read from the symbol tables: closes, betas, the dates
of the newest prices and betas, ETF price history and a symbol's factor rows."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.storage.dialect import IN_LIMIT, chunks
from symbol_pipeline.storage.schema import symbol_factor_exposures, symbol_prices_daily

_FACTOR_INDEX = {f: i for i, f in enumerate(FACTOR_NAMES)}

# Up to this many symbols (one portfolio, a cache miss) latest_betas fills its arrays without
# pandas, whose overhead on a few hundred rows was most of the miss.
_SMALL = 200


def max_date(table: sa.Table, as_of: dt.date | sa.BindParameter | None = None,
             non_null: sa.ColumnElement | None = None, symbol: str | None = None) -> sa.Select:
    """SELECT the table's latest date on or before as_of (where `non_null` is set, of `symbol`)."""
    stmt = sa.select(sa.func.max(table.c.date))
    if as_of is not None:
        stmt = stmt.where(table.c.date <= as_of)
    if non_null is not None:
        stmt = stmt.where(non_null.is_not(None))
    if symbol is not None:
        stmt = stmt.where(table.c.symbol == symbol)
    return stmt


def dates_subquery(as_of: dt.date | sa.BindParameter | None) -> sa.Subquery:
    """One row: the latest price date and the latest session with a non-NULL beta, on or before as_of."""
    return sa.select(
        max_date(symbol_prices_daily, as_of).scalar_subquery().label("prices_date"),
        max_date(symbol_factor_exposures, as_of, symbol_factor_exposures.c.beta).scalar_subquery().label("betas_date"),
    ).subquery("dates")


def snapshot_dates(conn: Connection, as_of: dt.date | None) -> tuple[dt.date | None, dt.date | None]:
    """(latest price date, latest session with any non-NULL beta), both on or before as_of."""
    row = conn.execute(sa.select(dates_subquery(as_of))).first()
    return row.prices_date, row.betas_date


def _latest_rows(conn: Connection, table: sa.Table, value: sa.Column, extra_key: sa.Column | None,
                 symbols: Sequence[str], as_of: dt.date | None, latest: dt.date | None,
                 skip_null: bool) -> list[tuple]:
    """Per (symbol[, extra_key]): the latest `value` on or before as_of, as (symbol[, key], value, date) rows.

    Two steps because nearly every symbol has a row on `latest` (one index range), and only
    the rest need the per-symbol search through history.
    """
    if latest is None or not symbols:
        return []
    symbols = list(symbols)
    keys = [table.c.symbol] if extra_key is None else [table.c.symbol, extra_key]
    base = sa.select(*keys, value, table.c.date).where(table.c.date == latest)
    if skip_null:
        base = base.where(value.is_not(None))
    if len(symbols) > IN_LIMIT:  # the whole date slice, filtered here
        wanted = set(symbols)
        rows = [r for r in conn.execute(base).all() if r[0] in wanted]
    else:
        rows = conn.execute(base.where(table.c.symbol.in_(symbols))).all()
    expected = 1 if extra_key is None else len(FACTOR_NAMES)
    counts = Counter(r[0] for r in rows)
    behind = [s for s in symbols if counts.get(s, 0) < expected]
    if not behind:
        return rows
    older = []
    for chunk in chunks(behind):
        cond = [table.c.symbol.in_(chunk), table.c.date < latest]
        if as_of is not None:
            cond.append(table.c.date <= as_of)
        if skip_null:
            cond.append(value.is_not(None))
        newest = sa.select(*keys, sa.func.max(table.c.date).label("d")).where(*cond).group_by(*keys).subquery()
        on = [table.c.symbol == newest.c.symbol, table.c.date == newest.c.d]
        if extra_key is not None:
            on.append(extra_key == newest.c[extra_key.name])
        older.extend(conn.execute(sa.select(*keys, value, table.c.date).join(newest, sa.and_(*on))).all())
    width = len(keys)
    behind_set = set(behind)
    have = {tuple(r[:width]) for r in rows if r[0] in behind_set}  # a key present on `latest` wins
    return [*rows, *(r for r in older if tuple(r[:width]) not in have)]


def latest_closes(conn: Connection, symbols: Sequence[str], as_of: dt.date | None,
                  prices_date: dt.date | None) -> pd.DataFrame:
    """Columns symbol, value (close), date: the latest close on or before as_of per symbol."""
    px = symbol_prices_daily
    rows = _latest_rows(conn, px, px.c.close, None, symbols, as_of, prices_date, skip_null=False)
    return pd.DataFrame(rows, columns=["symbol", "value", "date"])


def latest_betas(conn: Connection, symbols: Sequence[str], as_of: dt.date | None,
                 betas_date: dt.date | None) -> tuple[np.ndarray, np.ndarray]:
    """Latest non-NULL beta on or before as_of per symbol and factor.

    Returns (betas, dates): betas shape (S, F) float with NaN where none; dates shape (S, F)
    datetime64[D] with NaT where none; rows in the order of `symbols`, columns FACTOR_NAMES.
    """
    t = symbol_factor_exposures
    betas = np.full((len(symbols), len(FACTOR_NAMES)), np.nan)
    dates = np.full((len(symbols), len(FACTOR_NAMES)), np.datetime64("NaT"), dtype="datetime64[D]")
    rows = _latest_rows(conn, t, t.c.beta, t.c.factor, symbols, as_of, betas_date, skip_null=True)
    if not rows:
        return betas, dates
    row_of = {s: i for i, s in enumerate(symbols)}
    if len(symbols) <= _SMALL:
        for symbol, factor, value, day in rows:
            f = _FACTOR_INDEX.get(factor)
            if f is not None:
                betas[row_of[symbol], f] = value
                dates[row_of[symbol], f] = np.datetime64(day, "D")
        return betas, dates
    frame = pd.DataFrame(rows, columns=["symbol", "factor", "value", "date"])
    frame = frame[frame["factor"].isin(_FACTOR_INDEX.keys())]
    at = (frame["symbol"].map(row_of).to_numpy(), frame["factor"].map(_FACTOR_INDEX).to_numpy())
    betas[at] = frame["value"].to_numpy(dtype=float)
    dates[at] = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]")
    return betas, dates


def etf_price_history(conn: Connection, etfs: Sequence[str], start: dt.date, end: dt.date) -> pd.DataFrame:
    """Rows symbol, date, close, dividend, split_ratio of the ETFs in [start, end]."""
    px = symbol_prices_daily
    rows = conn.execute(
        sa.select(px.c.symbol, px.c.date, px.c.close, px.c.dividend, px.c.split_ratio).where(
            px.c.symbol.in_(list(etfs)), px.c.date >= start, px.c.date <= end
        )
    ).all()
    return pd.DataFrame(rows, columns=["symbol", "date", "close", "dividend", "split_ratio"])


def symbol_factor_rows(conn: Connection, symbol: str, date: dt.date | None):
    """(date, rows): the symbol's factor rows on `date`; when date is None, on its latest date with a
    beta (a failed fetch leaves NULL rows on later dates: the last betas are served, their date
    shows how old), else its latest date with rows (a new listing's insufficient_data rows)."""
    t = symbol_factor_exposures
    if date is None:
        date = (conn.execute(max_date(t, non_null=t.c.beta, symbol=symbol)).scalar()
                or conn.execute(max_date(t, symbol=symbol)).scalar())
        if date is None:
            return None, []
    rows = conn.execute(
        sa.select(t.c.factor, t.c.beta, t.c.beta_uncapped, t.c.capped, t.c.alpha, t.c.r_squared, t.c.std_error,
                  t.c.observations, t.c.quality, t.c.method, t.c.window)
        .where(t.c.symbol == symbol, t.c.date == date)
    ).all()
    return date, sorted(rows, key=lambda r: _FACTOR_INDEX.get(r.factor, 99))


def latest_factor_date(conn: Connection, symbol: str) -> dt.date | None:
    """The symbol's latest date with a non-NULL beta."""
    t = symbol_factor_exposures
    return conn.execute(max_date(t, non_null=t.c.beta, symbol=symbol)).scalar()
