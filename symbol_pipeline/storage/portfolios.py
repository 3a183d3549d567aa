"""Every SQL statement of the portfolio layer. Functions take a Connection and run in its transaction.

The symbol tables are read here too (latest closes, latest betas, ETF history, a symbol's
factors), so that the service and the API never write SQL of their own.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import weakref
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.storage.engine import is_postgres, upsert
from symbol_pipeline.storage.portfolio_schema import (
    PortfolioId,
    api_keys,
    portfolio_analytics_cache,
    portfolio_changes,
    portfolio_exposure_summary,
    portfolio_factor_exposures,
    portfolios,
    positions,
    users,
)
from symbol_pipeline.storage.schema import symbol_factor_exposures, symbol_prices_daily

# Above this many symbols a query reads the whole date slice and filters in memory instead
# of sending a long IN list (and SQLite caps bound parameters).
_IN_LIMIT = 900
_FACTOR_INDEX = {f: i for i, f in enumerate(FACTOR_NAMES)}


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _chunks(items: Sequence, size: int = _IN_LIMIT) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- users and keys ---------------------------------------------------------------------------


def insert_user(conn: Connection, name: str, is_admin: bool) -> int:
    return conn.execute(users.insert().values(name=name, is_admin=is_admin).returning(users.c.id)).scalar_one()


def user_by_name(conn: Connection, name: str):
    return conn.execute(sa.select(users).where(users.c.name == name)).first()


def list_users(conn: Connection):
    return conn.execute(sa.select(users).order_by(users.c.id)).all()


def insert_api_key(conn: Connection, user_id: int, key_hash: str, key_prefix: str) -> None:
    conn.execute(api_keys.insert().values(user_id=user_id, key_hash=key_hash, key_prefix=key_prefix))


def revoke_api_keys(conn: Connection, *, key_hash: str | None = None, key_prefix: str | None = None,
                    user_id: int | None = None) -> int:
    """Mark matching unrevoked keys revoked; return how many."""
    stmt = api_keys.update().where(api_keys.c.revoked_at.is_(None))
    if key_hash is not None:
        stmt = stmt.where(api_keys.c.key_hash == key_hash)
    if key_prefix is not None:
        stmt = stmt.where(api_keys.c.key_prefix == key_prefix)
    if user_id is not None:
        stmt = stmt.where(api_keys.c.user_id == user_id)
    return conn.execute(stmt.values(revoked_at=now())).rowcount


def user_for_key_hash(conn: Connection, key_hash: str):
    """(id, name, is_admin) of the user holding this unrevoked key, or None."""
    return conn.execute(_user_for_key_stmt(), {"key_hash": key_hash}).first()


# --- portfolios and positions -----------------------------------------------------------------


def insert_portfolio(conn: Connection, portfolio_id: str, owner_id: int, name: str, equity: float,
                     currency: str) -> None:
    conn.execute(
        portfolios.insert().values(id=portfolio_id, owner_id=owner_id, name=name, equity=equity, currency=currency)
    )


def insert_portfolios(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    for chunk in _chunks(rows, 5000):
        conn.execute(portfolios.insert(), list(chunk))


def portfolio_row(conn: Connection, portfolio_id: str):
    return conn.execute(sa.select(portfolios).where(portfolios.c.id == portfolio_id)).first()


def update_portfolio(conn: Connection, portfolio_id: str, **values: Any) -> None:
    conn.execute(portfolios.update().where(portfolios.c.id == portfolio_id).values(updated_at=now(), **values))


def list_portfolios(conn: Connection, owner_id: int | None = None):
    stmt = sa.select(portfolios).order_by(portfolios.c.created_at, portfolios.c.id)
    if owner_id is not None:
        stmt = stmt.where(portfolios.c.owner_id == owner_id)
    return conn.execute(stmt).all()


def existing_portfolio_ids(conn: Connection, portfolio_ids: Sequence[str] | None = None) -> list[str]:
    stmt = sa.select(portfolios.c.id).order_by(portfolios.c.id)
    if portfolio_ids is None:
        return list(conn.execute(stmt).scalars())
    found: list[str] = []
    for chunk in _chunks(list(portfolio_ids)):
        found.extend(conn.execute(stmt.where(portfolios.c.id.in_(chunk))).scalars())
    return found


def insert_positions(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    return [conn.execute(positions.insert().values(**r).returning(positions.c.id)).scalar_one() for r in rows]


def bulk_insert_positions(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Many positions without returning ids (benchmarks, imports of thousands of rows)."""
    _bulk_insert(conn, positions, pd.DataFrame(list(rows)))


def position_row(conn: Connection, position_id: int):
    """The position with its portfolio's owner, or None."""
    return conn.execute(
        sa.select(positions, portfolios.c.owner_id)
        .join(portfolios, portfolios.c.id == positions.c.portfolio_id)
        .where(positions.c.id == position_id)
    ).first()


def update_position(conn: Connection, position_id: int, **values: Any) -> None:
    conn.execute(positions.update().where(positions.c.id == position_id).values(updated_at=now(), **values))


def list_positions(conn: Connection, portfolio_id: str, include_closed: bool = False):
    stmt = sa.select(positions).where(positions.c.portfolio_id == portfolio_id).order_by(positions.c.id)
    if not include_closed:
        stmt = stmt.where(positions.c.exit_date.is_(None))
    return conn.execute(stmt).all()


def open_positions_frame(conn: Connection, portfolio_ids: Sequence[str] | None) -> pd.DataFrame:
    """Open positions: columns portfolio_id, symbol, quantity, entry_price (one row per position)."""
    cols = [positions.c.portfolio_id, positions.c.symbol, positions.c.quantity, positions.c.entry_price]
    stmt = sa.select(*cols).where(positions.c.exit_date.is_(None))
    names = ["portfolio_id", "symbol", "quantity", "entry_price"]
    if portfolio_ids is None:
        if is_postgres(conn):
            return _copy_query(conn, "SELECT portfolio_id, symbol, quantity, entry_price FROM positions "
                                     "WHERE exit_date IS NULL", names)
        return pd.DataFrame(conn.execute(stmt).all(), columns=names)
    frames = [pd.DataFrame(conn.execute(stmt.where(positions.c.portfolio_id.in_(chunk))).all(), columns=names)
              for chunk in _chunks(list(portfolio_ids))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=names)


def equity_of(conn: Connection, portfolio_ids: Sequence[str] | None) -> dict[str, float]:
    return {pid: equity for pid, (equity, _) in equity_and_version(conn, portfolio_ids).items()}


def equity_and_version(conn: Connection, portfolio_ids: Sequence[str] | None) -> dict[str, tuple[float, int]]:
    """Per portfolio (all when None): (equity, version)."""
    stmt = sa.select(portfolios.c.id, portfolios.c.equity, portfolios.c.version)
    if portfolio_ids is None:
        return {r.id: (r.equity, r.version) for r in conn.execute(stmt)}
    out: dict[str, tuple[float, int]] = {}
    for chunk in _chunks(list(portfolio_ids)):
        out.update({r.id: (r.equity, r.version) for r in conn.execute(stmt.where(portfolios.c.id.in_(chunk)))})
    return out


def bump_version(conn: Connection, portfolio_id: str) -> None:
    """Make every cache entry computed from the portfolio's previous state unreachable."""
    conn.execute(portfolios.update().where(portfolios.c.id == portfolio_id)
                 .values(version=portfolios.c.version + 1))


# --- the change log ---------------------------------------------------------------------------


def record_change(conn: Connection, portfolio_id: str, kind: str) -> int:
    return conn.execute(
        portfolio_changes.insert().values(portfolio_id=portfolio_id, kind=kind).returning(portfolio_changes.c.id)
    ).scalar_one()


def changes_after(conn: Connection, cursor: int, limit: int = 100_000):
    """Change-log rows with id > cursor, oldest first: (id, portfolio_id, kind)."""
    return conn.execute(
        sa.select(portfolio_changes.c.id, portfolio_changes.c.portfolio_id, portfolio_changes.c.kind)
        .where(portfolio_changes.c.id > cursor)
        .order_by(portfolio_changes.c.id)
        .limit(limit)
    ).all()


# --- the analytics cache ----------------------------------------------------------------------


def cached_document(conn: Connection, portfolio_id: str, cache_type: str, as_of: dt.date | None,
                    at: dt.datetime) -> list:
    """The cache-hit path in one round trip. No rows when no such portfolio; otherwise one row
    per unexpired entry of `cache_type` (one row with cache_key NULL when there is none).

    Columns owner_id, equity, version, prices_date, betas_date (both on or before as_of), cache_key, data.
    """
    params = {"pid": portfolio_id, "cache_type": cache_type, "at": at}
    if as_of is not None:
        params["as_of"] = as_of
    if is_postgres(conn):
        return conn.exec_driver_sql(_prepared(conn, "sp_cached_document", _cached_document_stmt(as_of is not None),
                                              list(params)), params).all()
    return conn.execute(_cached_document_stmt(as_of is not None), params).all()


def _prepared(conn: Connection, name: str, stmt: sa.Select, names: list[str]) -> str:
    """PostgreSQL: the EXECUTE text of `stmt` prepared once per connection under `name`.

    psycopg2 sends every statement as text, and planning the cache-hit query cost more server
    time than running it; a prepared statement is planned once per connection.
    """
    name = f"{name}_{len(names)}"
    info = conn.connection.info
    if name not in info:
        sql = str(stmt.compile(dialect=conn.dialect))
        for i, param in enumerate(names, start=1):
            sql = sql.replace(f"%({param})s", f"${i}")
        if "%(" in sql:
            raise ValueError(f"unbound parameter left in prepared statement {name}")
        conn.exec_driver_sql(f"PREPARE {name} AS {sql}".replace("%%", "%"))
        info[name] = "EXECUTE " + name + "(" + ", ".join(f"%({p})s" for p in names) + ")"
    return info[name]


def read_cache(conn: Connection, portfolio_id: str, cache_type: str, cache_key: str, at: dt.datetime) -> str | None:
    return conn.execute(
        _read_cache_stmt(), {"pid": portfolio_id, "cache_type": cache_type, "cache_key": cache_key, "at": at}
    ).scalar()


def write_cache(conn: Connection, rows: Sequence[dict[str, Any]] | pd.DataFrame, *, replace_all: bool = False) -> None:
    """Store entries (portfolio_id, cache_type, cache_key, data, valid_until), one per portfolio and type.

    Older entries of the same portfolio and type are deleted first: they can never be hit again.
    """
    if len(rows) == 0:
        return
    if isinstance(rows, pd.DataFrame):
        frame, records = rows, None
        pairs = list(zip(rows["cache_type"].tolist(), rows["portfolio_id"].tolist()))
    else:  # a few entries (a cache miss): no DataFrame unless COPY needs one
        records = list(rows)
        frame = pd.DataFrame(records) if len(records) > 1000 else None
        pairs = [(r["cache_type"], r["portfolio_id"]) for r in records]
    c = portfolio_analytics_cache.c
    types = sorted({t for t, _ in pairs})
    if replace_all:
        conn.execute(portfolio_analytics_cache.delete().where(c.cache_type.in_(types)))
        _bulk_insert(conn, portfolio_analytics_cache, frame if frame is not None else pd.DataFrame(records))
        return
    for cache_type in types:
        ids = [p for t, p in pairs if t == cache_type]
        for chunk in _chunks(ids):
            conn.execute(portfolio_analytics_cache.delete().where(c.cache_type == cache_type, c.portfolio_id.in_(chunk)))
    if len(pairs) > 1000:
        _bulk_insert(conn, portfolio_analytics_cache, frame if frame is not None else pd.DataFrame(records))
    else:
        upsert(conn, portfolio_analytics_cache, records if records is not None else frame.to_dict("records"))


def delete_cache(conn: Connection, portfolio_id: str | None = None) -> int:
    stmt = portfolio_analytics_cache.delete()
    if portfolio_id is not None:
        stmt = stmt.where(portfolio_analytics_cache.c.portfolio_id == portfolio_id)
    return conn.execute(stmt).rowcount


# --- reading the symbol layer -----------------------------------------------------------------


def _max_date_stmt(table: sa.Table, as_of: dt.date | sa.BindParameter | None, non_null: sa.ColumnElement | None = None):
    stmt = sa.select(sa.func.max(table.c.date))
    if as_of is not None:
        stmt = stmt.where(table.c.date <= as_of)
    if non_null is not None:
        stmt = stmt.where(non_null.is_not(None))
    return stmt.scalar_subquery()


def snapshot_dates(conn: Connection, as_of: dt.date | None) -> tuple[dt.date | None, dt.date | None]:
    """(latest price date, latest session with any non-NULL beta), both on or before as_of."""
    row = conn.execute(
        sa.select(
            _max_date_stmt(symbol_prices_daily, as_of),
            _max_date_stmt(symbol_factor_exposures, as_of, symbol_factor_exposures.c.beta),
        )
    ).first()
    return row[0], row[1]


def _dates_subquery(as_of: sa.BindParameter | None) -> sa.Subquery:
    """One row: the latest price date and the latest session with a non-NULL beta, on or before as_of."""
    return sa.select(
        _max_date_stmt(symbol_prices_daily, as_of).label("prices_date"),
        _max_date_stmt(symbol_factor_exposures, as_of, symbol_factor_exposures.c.beta).label("betas_date"),
    ).subquery("dates")


@lru_cache(maxsize=2)
def _cached_document_stmt(with_as_of: bool) -> sa.Select:
    pid = sa.bindparam("pid", type_=PortfolioId)
    dates = _dates_subquery(sa.bindparam("as_of", type_=sa.Date) if with_as_of else None)
    c = portfolio_analytics_cache.c
    return (
        sa.select(portfolios.c.owner_id, portfolios.c.equity, portfolios.c.version, dates.c.prices_date,
                  dates.c.betas_date, c.cache_key, c.data)
        .select_from(
            portfolios.join(dates, sa.true()).outerjoin(
                portfolio_analytics_cache,
                sa.and_(c.portfolio_id == portfolios.c.id, c.cache_type == sa.bindparam("cache_type"),
                        c.valid_until > sa.bindparam("at", type_=sa.DateTime(timezone=True))),
            )
        )
        .where(portfolios.c.id == pid)
    )


@lru_cache(maxsize=2)
def _positions_snapshot_stmt(with_as_of: bool) -> sa.Select:
    """Built once: on the hot path, building and hashing a statement costs more than running it."""
    px = symbol_prices_daily
    pid = sa.bindparam("pid", type_=PortfolioId)
    dates = _dates_subquery(sa.bindparam("as_of", type_=sa.Date) if with_as_of else None)
    open_pos = (
        sa.select(positions.c.portfolio_id, positions.c.symbol, positions.c.quantity, positions.c.entry_price)
        .where(positions.c.portfolio_id == pid, positions.c.exit_date.is_(None))
        .subquery("pos")
    )
    return (
        sa.select(portfolios.c.owner_id, portfolios.c.equity, dates.c.prices_date, dates.c.betas_date,
                  open_pos.c.symbol, open_pos.c.quantity, open_pos.c.entry_price, px.c.close)
        .select_from(
            portfolios.join(dates, sa.true())
            .outerjoin(open_pos, open_pos.c.portfolio_id == portfolios.c.id)
            .outerjoin(px, sa.and_(px.c.symbol == open_pos.c.symbol, px.c.date == dates.c.prices_date))
        )
        .where(portfolios.c.id == pid)
    )


def portfolio_positions_snapshot(conn: Connection, portfolio_id: str, as_of: dt.date | None) -> list:
    """The cache-hit path in one round trip: one row per open position (or one row with symbol NULL).

    Columns owner_id, equity, prices_date, betas_date, symbol, quantity, entry_price, close (the
    close on prices_date, NULL when the symbol has none that day); no rows when no such portfolio.
    """
    params = {"pid": portfolio_id} if as_of is None else {"pid": portfolio_id, "as_of": as_of}
    return conn.execute(_positions_snapshot_stmt(as_of is not None), params).all()


@lru_cache(maxsize=1)
def _read_cache_stmt() -> sa.Select:
    c = portfolio_analytics_cache.c
    return sa.select(c.data).where(
        c.portfolio_id == sa.bindparam("pid", type_=PortfolioId),
        c.cache_type == sa.bindparam("cache_type"),
        c.cache_key == sa.bindparam("cache_key"),
        c.valid_until > sa.bindparam("at", type_=sa.DateTime(timezone=True)),
    )


@lru_cache(maxsize=1)
def _user_for_key_stmt() -> sa.Select:
    return (
        sa.select(users.c.id, users.c.name, users.c.is_admin)
        .join(api_keys, api_keys.c.user_id == users.c.id)
        .where(api_keys.c.key_hash == sa.bindparam("key_hash"), api_keys.c.revoked_at.is_(None))
    )


def _latest_values(
    conn: Connection,
    table: sa.Table,
    value: sa.Column,
    extra_keys: Sequence[sa.Column],
    symbols: Sequence[str],
    as_of: dt.date | None,
    latest: dt.date | None,
    skip_null: bool,
) -> pd.DataFrame:
    """Per (symbol, *extra_keys): the latest `value` on or before as_of, with its date.

    Two steps because nearly every symbol has a row on `latest` (one index range), and only
    the rest need the per-symbol search through history.
    """
    keys = [table.c.symbol, *extra_keys]
    names = ["symbol", *[k.name for k in extra_keys], "value", "date"]
    if latest is None or not symbols:
        return pd.DataFrame(columns=names)
    symbols = list(symbols)
    base = sa.select(*keys, value, table.c.date).where(table.c.date == latest)
    if skip_null:
        base = base.where(value.is_not(None))
    if len(symbols) > _IN_LIMIT:
        frame = pd.DataFrame(conn.execute(base).all(), columns=names)
        frame = frame[frame["symbol"].isin(set(symbols))]
    else:
        frame = pd.DataFrame(conn.execute(base.where(table.c.symbol.in_(symbols))).all(), columns=names)
    expected = len(extra_keys) and len(FACTOR_NAMES) or 1
    counts = frame.groupby("symbol").size() if len(frame) else pd.Series(dtype=int)
    behind = [s for s in symbols if counts.get(s, 0) < expected]
    if behind:
        parts = [frame]
        for chunk in _chunks(behind):
            cond = [table.c.symbol.in_(chunk), table.c.date < latest]
            if as_of is not None:
                cond.append(table.c.date <= as_of)
            if skip_null:
                cond.append(value.is_not(None))
            newest = sa.select(*keys, sa.func.max(table.c.date).label("d")).where(*cond).group_by(*keys).subquery()
            on = [table.c.symbol == newest.c.symbol, table.c.date == newest.c.d]
            on += [k == newest.c[k.name] for k in extra_keys]
            rows = conn.execute(sa.select(*keys, value, table.c.date).join(newest, sa.and_(*on))).all()
            parts.append(pd.DataFrame(rows, columns=names))
        parts = [p for p in parts if len(p)]
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=names)
        # A key present on `latest` wins over its older rows.
        frame = frame.sort_values("date").drop_duplicates(["symbol", *[k.name for k in extra_keys]], keep="last")
    return frame


_SMALL = 200


def _latest_rows(conn: Connection, table: sa.Table, value: sa.Column, extra_key: sa.Column, symbols: list[str],
                 as_of: dt.date | None, latest: dt.date) -> list[tuple]:
    """_latest_values for a few symbols and one extra key, non-NULL values: (symbol, key, value, date) rows."""
    keys = [table.c.symbol, extra_key]
    rows = conn.execute(sa.select(*keys, value, table.c.date).where(
        table.c.date == latest, table.c.symbol.in_(symbols), value.is_not(None))).all()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[0]] = counts.get(r[0], 0) + 1
    behind = [s for s in symbols if counts.get(s, 0) < len(FACTOR_NAMES)]
    if not behind:
        return rows
    cond = [table.c.symbol.in_(behind), table.c.date < latest, value.is_not(None)]
    if as_of is not None:
        cond.append(table.c.date <= as_of)
    newest = sa.select(*keys, sa.func.max(table.c.date).label("d")).where(*cond).group_by(*keys).subquery()
    older = conn.execute(sa.select(*keys, value, table.c.date).join(newest, sa.and_(
        table.c.symbol == newest.c.symbol, extra_key == newest.c[extra_key.name], table.c.date == newest.c.d))).all()
    have = {(r[0], r[1]) for r in rows}  # a key present on `latest` wins over its older rows
    return [*rows, *(r for r in older if (r[0], r[1]) not in have)]


def latest_closes(conn: Connection, symbols: Sequence[str], as_of: dt.date | None,
                  prices_date: dt.date | None) -> pd.DataFrame:
    """Columns symbol, value (close), date: the latest close on or before as_of per symbol."""
    return _latest_values(conn, symbol_prices_daily, symbol_prices_daily.c.close, [], symbols, as_of,
                          prices_date, skip_null=False)


def latest_betas(conn: Connection, symbols: Sequence[str], as_of: dt.date | None,
                 betas_date: dt.date | None) -> tuple[np.ndarray, np.ndarray]:
    """Latest non-NULL beta on or before as_of per symbol and factor.

    Returns (betas, dates): betas shape (S, F) float with NaN where none; dates shape (S, F)
    datetime64[D] with NaT where none; rows in the order of `symbols`, columns FACTOR_NAMES.
    """
    t = symbol_factor_exposures
    betas = np.full((len(symbols), len(FACTOR_NAMES)), np.nan)
    dates = np.full((len(symbols), len(FACTOR_NAMES)), np.datetime64("NaT"), dtype="datetime64[D]")
    if 0 < len(symbols) <= _SMALL and betas_date is not None:
        # One portfolio (a cache miss): the same two queries without pandas, whose overhead on
        # a few hundred rows was most of the miss.
        row_of = {s: i for i, s in enumerate(symbols)}
        for symbol, factor, value, day in _latest_rows(conn, t, t.c.beta, t.c.factor, list(symbols), as_of,
                                                       betas_date):
            f = _FACTOR_INDEX.get(factor)
            if f is not None:
                betas[row_of[symbol], f] = value
                dates[row_of[symbol], f] = np.datetime64(day, "D")
        return betas, dates
    frame = _latest_values(conn, t, t.c.beta, [t.c.factor], symbols, as_of, betas_date, skip_null=True)
    if len(frame):
        frame = frame[frame["factor"].isin(_FACTOR_INDEX.keys())]
        row_of = {s: i for i, s in enumerate(symbols)}
        rows = frame["symbol"].map(row_of).to_numpy()
        cols = frame["factor"].map(_FACTOR_INDEX).to_numpy()
        betas[rows, cols] = frame["value"].to_numpy(dtype=float)
        dates[rows, cols] = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]")
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
    """The symbol's factor rows on `date`, or on its latest date with rows when date is None."""
    t = symbol_factor_exposures
    if date is None:
        date = conn.execute(sa.select(sa.func.max(t.c.date)).where(t.c.symbol == symbol)).scalar()
        if date is None:
            return None, []
    rows = conn.execute(
        sa.select(t.c.factor, t.c.beta, t.c.beta_uncapped, t.c.capped, t.c.alpha, t.c.r_squared, t.c.std_error,
                  t.c.observations, t.c.quality, t.c.method, t.c.window)
        .where(t.c.symbol == symbol, t.c.date == date)
    ).all()
    order = {f: i for i, f in enumerate(FACTOR_NAMES)}
    return date, sorted(rows, key=lambda r: order.get(r.factor, 99))


def latest_factor_date(conn: Connection, symbol: str) -> dt.date | None:
    t = symbol_factor_exposures
    return conn.execute(
        sa.select(sa.func.max(t.c.date)).where(t.c.symbol == symbol, t.c.beta.is_not(None))
    ).scalar()


# --- writing computed exposures ---------------------------------------------------------------


def write_exposures(conn: Connection, portfolio_ids: Sequence[str] | None, factor_rows: pd.DataFrame,
                    summary_rows: pd.DataFrame) -> None:
    """Replace the stored snapshot of these portfolios (all when portfolio_ids is None)."""
    for table in (portfolio_factor_exposures, portfolio_exposure_summary):
        if portfolio_ids is None:
            conn.execute(table.delete())
        else:
            for chunk in _chunks(list(portfolio_ids)):
                conn.execute(table.delete().where(table.c.portfolio_id.in_(chunk)))
    _bulk_insert(conn, portfolio_factor_exposures, factor_rows)
    _bulk_insert(conn, portfolio_exposure_summary, summary_rows)


def read_exposure_summary(conn: Connection, portfolio_id: str):
    return conn.execute(
        sa.select(portfolio_exposure_summary).where(portfolio_exposure_summary.c.portfolio_id == portfolio_id)
    ).first()


def read_factor_exposures(conn: Connection, portfolio_id: str) -> dict[str, dict[str, float | None]]:
    """Per factor {beta, dollar_exposure, coverage} from the stored snapshot (empty when none)."""
    t = portfolio_factor_exposures
    row = conn.execute(sa.select(t).where(t.c.portfolio_id == portfolio_id)).first()
    if row is None:
        return {}
    m = row._mapping
    return {f: {k: m[f"{k}_{f}"] for k in ("beta", "dollar_exposure", "coverage")} for f in FACTOR_NAMES}


# --- bulk I/O, the one place PostgreSQL and SQLite differ here ----------------------------------


def _bulk_insert(conn: Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    """Append a DataFrame: COPY on PostgreSQL (10× faster than INSERTs at 100k rows), executemany elsewhere."""
    if frame is None or frame.empty:
        return
    if is_postgres(conn):
        # Text-format COPY of rows formatted column by column: pandas' to_csv of object frames
        # cost more than the COPY itself.
        cells = [_copy_cells(frame[c]) for c in frame.columns]
        buf = io.StringIO("\n".join(map("\t".join, zip(*cells))) + "\n")
        cols = ", ".join(f'"{c}"' for c in frame.columns)
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.copy_expert(f"COPY {table.name} ({cols}) FROM STDIN", buf)
        finally:
            cursor.close()
        return
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for chunk in _chunks(records, max(1, 30_000 // max(1, len(frame.columns)))):
        conn.execute(table.insert(), list(chunk))


_NULL = "\\N"


def _copy_text(value: str) -> str:
    """Escape a value for COPY's text format (backslash, tab, newline, carriage return)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _copy_cell(value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return _NULL
    if isinstance(value, str):
        return _copy_text(value)
    if isinstance(value, (bool, np.bool_)):
        return "t" if value else "f"
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return _copy_text(str(value))


def _copy_cells(column: pd.Series) -> list[str]:
    """One column as COPY text cells; floats through repr (exact round trip), NaN/None as NULL."""
    kind = column.dtype.kind
    if kind == "f":
        values = column.to_numpy(dtype=float)
        cells = list(map(repr, values.tolist()))
        for i in np.flatnonzero(np.isnan(values)).tolist():
            cells[i] = _NULL
        return cells
    if kind in "iu":
        return list(map(str, column.tolist()))
    if kind == "b":
        return ["t" if v else "f" for v in column.tolist()]
    if kind == "M":
        return [_NULL if v is pd.NaT else v.isoformat() for v in column.tolist()]
    values = column.tolist()
    if len(values) > 100 and len(set(map(type, values[:100]))) == 1 and not isinstance(values[0], str):
        # Dates and other repeated objects: format each distinct value once.
        formatted: dict[Any, str] = {}
        return [formatted[v] if v in formatted else formatted.setdefault(v, _copy_cell(v)) for v in values]
    return list(map(_copy_cell, values))


def _copy_query(conn: Connection, sql: str, names: list[str]) -> pd.DataFrame:
    buf = io.StringIO()
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", buf)
    finally:
        cursor.close()
    buf.seek(0)
    return pd.read_csv(buf, names=names, header=None, keep_default_na=False, na_values=[""],
                       dtype={"portfolio_id": str, "symbol": str})


def serving_engine(url: str) -> sa.Engine:
    """The engine of the HTTP API: on PostgreSQL a pool sized for the server's threads and no
    pre-ping (it doubles the round trips of a cache hit; a dropped connection fails one request
    and the pool reconnects). Elsewhere the project's shared engine."""
    from symbol_pipeline.storage.engine import cached_engine

    if url.startswith("postgresql"):
        # At least as many connections as the server runs threads (SERVING_THREADS): a smaller
        # pool with overflow opened and closed a connection on many requests.
        return sa.create_engine(url, pool_size=SERVING_THREADS, max_overflow=4, pool_pre_ping=False,
                                pool_recycle=600)
    return cached_engine(url)


# Worker threads per API process for the synchronous endpoints (anyio's default is 40): on two
# cores more threads only queue on the GIL and hold more PostgreSQL connections.
SERVING_THREADS = 16

_autocommit: weakref.WeakKeyDictionary[sa.Engine, sa.Engine] = weakref.WeakKeyDictionary()


def autocommit(engine: sa.Engine) -> sa.Engine:
    """An engine for reads outside any transaction: no BEGIN and no ROLLBACK round trip around a
    single SELECT (each statement sees the latest committed data, as under READ COMMITTED).

    On PostgreSQL its own pool of connections that stay in autocommit (switching a pooled
    connection in and out of autocommit cost a round trip of its own), disposed with `engine`.
    """
    found = _autocommit.get(engine)
    if found is None:
        if engine.dialect.name == "postgresql":
            found = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=SERVING_THREADS,
                                     max_overflow=4, pool_pre_ping=False, pool_recycle=600)
            sa.event.listen(engine, "engine_disposed", lambda _conn, child=found: child.dispose())
        else:
            found = engine.execution_options(isolation_level="AUTOCOMMIT")
        _autocommit[engine] = found
    return found
