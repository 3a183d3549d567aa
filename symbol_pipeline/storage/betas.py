"""Symbol betas (the symbol_factor_exposures rows, keyed symbol, date, factor) and daily metrics:
upserts and the reads the CLI and API use."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.lib.factor_model import EXPOSURE_COLUMNS
from symbol_pipeline.storage.dialect import read_frame, upsert_frame
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


def write_metrics(conn: Connection, date: dt.date, metrics: pd.DataFrame) -> int:
    """Upsert one date's symbol_daily_metrics rows (index = symbol)."""
    if metrics.empty:
        return 0
    frame = metrics.reset_index().rename(columns={"index": "symbol"})
    frame.insert(1, "date", date)
    frame["updated_at"] = dt.datetime.now(dt.timezone.utc)
    return upsert_frame(conn, symbol_daily_metrics, frame)
