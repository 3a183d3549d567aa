"""Symbol betas (the symbol_factor_exposures rows, keyed symbol, date, factor) and daily metrics:
upserts and the reads the CLI, the API and the risk model use."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.lib.factor_model import EXPOSURE_COLUMNS
from symbol_pipeline.storage.dialect import chunks, read_frame, upsert_frame
from symbol_pipeline.storage.schema import symbol_daily_metrics, symbol_factor_exposures


def write_exposures(conn: Connection, date: dt.date, rows: pd.DataFrame) -> int:
    """Upsert one date's exposure rows (the long frame of lib.factor_model)."""
    if rows.empty:
        return 0
    frame = rows.loc[:, list(EXPOSURE_COLUMNS)].copy()
    frame.insert(1, "date", date)
    frame["capped"] = frame["capped"].astype(bool)
    frame["observations"] = frame["observations"].astype(int)
    frame["computed_at"] = dt.datetime.now(dt.timezone.utc)
    return upsert_frame(conn, symbol_factor_exposures, frame)


def read_exposures(
    conn: Connection,
    date: dt.date,
    symbols: Sequence[str] | None = None,
    factors: Sequence[str] | None = None,
) -> pd.DataFrame:
    c = symbol_factor_exposures.c
    query = sa.select(symbol_factor_exposures).where(c.date == date)
    if symbols is not None:
        query = query.where(c.symbol.in_(list(symbols)))
    if factors is not None:
        query = query.where(c.factor.in_(list(factors)))
    frame = read_frame(conn, query.order_by(c.symbol, c.factor))
    if not frame.empty:
        frame["capped"] = frame["capped"].astype(str).str.lower().isin(["true", "t", "1"])
    return frame


def latest_exposure_date(conn: Connection, on_or_before: dt.date | None = None) -> dt.date | None:
    query = sa.select(sa.func.max(symbol_factor_exposures.c.date))
    if on_or_before is not None:
        query = query.where(symbol_factor_exposures.c.date <= on_or_before)
    value = conn.execute(query).scalar()
    return pd.Timestamp(value).date() if value is not None else None


_LATEST_COLUMNS = ["symbol", "factor", "beta", "residual_variance", "date"]


def latest_betas_and_residuals(conn: Connection, symbols: Sequence[str], factors: Sequence[str],
                               as_of: dt.date | None, betas_date: dt.date | None) -> pd.DataFrame:
    """Per (symbol, factor): the latest row with a non-NULL beta on or before as_of, as columns
    symbol, factor, beta, residual_variance (NULL on rows computed before migration 0005), date.

    Two steps, as in `latest.latest_betas`: the rows on betas_date (nearly all of them), then a
    per-key search through history only for the (symbol, factor) pairs missing there.
    """
    if betas_date is None or not symbols or not factors:
        return pd.DataFrame(columns=_LATEST_COLUMNS)
    t = symbol_factor_exposures
    cols = (t.c.symbol, t.c.factor, t.c.beta, t.c.residual_variance, t.c.date)
    rows = []
    for chunk in chunks(list(symbols)):
        rows += conn.execute(sa.select(*cols).where(
            t.c.date == betas_date, t.c.symbol.in_(chunk), t.c.factor.in_(list(factors)), t.c.beta.is_not(None)
        )).all()
    found = {(r.symbol, r.factor) for r in rows}
    behind = sorted({s for s in symbols for f in factors if (s, f) not in found})
    for chunk in chunks(behind):
        cond = [t.c.symbol.in_(chunk), t.c.factor.in_(list(factors)), t.c.beta.is_not(None), t.c.date < betas_date]
        if as_of is not None:
            cond.append(t.c.date <= as_of)
        newest = sa.select(t.c.symbol, t.c.factor, sa.func.max(t.c.date).label("d")).where(*cond) \
            .group_by(t.c.symbol, t.c.factor).subquery()
        on = sa.and_(t.c.symbol == newest.c.symbol, t.c.factor == newest.c.factor, t.c.date == newest.c.d)
        rows += [r for r in conn.execute(sa.select(*cols).join(newest, on)).all() if (r.symbol, r.factor) not in found]
    return pd.DataFrame([tuple(r) for r in rows], columns=_LATEST_COLUMNS)


def write_metrics(conn: Connection, date: dt.date, metrics: pd.DataFrame) -> int:
    """Upsert one date's symbol_daily_metrics rows (index = symbol)."""
    if metrics.empty:
        return 0
    frame = metrics.reset_index().rename(columns={"index": "symbol"})
    frame.insert(1, "date", date)
    frame["updated_at"] = dt.datetime.now(dt.timezone.utc)
    return upsert_frame(conn, symbol_daily_metrics, frame)
