"""The analytics cache: one JSON document per portfolio and cache type, keyed by what it was computed from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from symbol_pipeline.storage.dialect import autocommit, bulk_insert, chunks, execute_prepared, is_postgres, upsert
from symbol_pipeline.storage.latest import dates_subquery
from symbol_pipeline.storage.portfolio_schema import PortfolioId, api_keys, portfolio_analytics_cache, portfolios


class CachedRow(NamedTuple):
    key_user: int | None
    owner_id: int | None
    equity: Any
    version: int
    prices_date: dt.date | None
    betas_date: dt.date | None
    cache_key: str | None
    data: str | None


@lru_cache(maxsize=2)
def _cached_document_stmt(with_as_of: bool) -> sa.Select:
    pid = sa.bindparam("pid", type_=PortfolioId)
    dates = dates_subquery(sa.bindparam("as_of", type_=sa.Date) if with_as_of else None)
    c = portfolio_analytics_cache.c
    # The user of the request's key if it is unrevoked (NULL key hash: no key to check).
    key_user = (sa.select(api_keys.c.user_id)
                .where(api_keys.c.key_hash == sa.bindparam("key_hash", type_=sa.String), api_keys.c.revoked_at.is_(None))
                .scalar_subquery())
    one = sa.select(sa.literal_column("1").label("one")).subquery("one")  # a row even when no such portfolio
    return (
        sa.select(key_user.label("key_user"), portfolios.c.owner_id, portfolios.c.equity, portfolios.c.version,
                  dates.c.prices_date, dates.c.betas_date, c.cache_key, c.data)
        .select_from(
            one.outerjoin(portfolios, portfolios.c.id == pid).join(dates, sa.true()).outerjoin(
                portfolio_analytics_cache,
                sa.and_(c.portfolio_id == portfolios.c.id, c.cache_type == sa.bindparam("cache_type"),
                        c.valid_until > sa.bindparam("at", type_=sa.DateTime(timezone=True))),
            )
        )
    )


def cached_document(conn: Connection, portfolio_id: str, cache_type: str, as_of: dt.date | None,
                    at: dt.datetime, key_hash: str | None = None) -> list:
    """The cache-hit path in one round trip, the request's key check included: one row per
    unexpired entry of `cache_type`, or one row with cache_key NULL when there is none (owner_id
    NULL too when there is no such portfolio).

    Columns key_user (the user of the unrevoked key `key_hash`, else NULL), owner_id, equity,
    version, prices_date, betas_date (both on or before as_of), cache_key, data.
    """
    params = {"pid": portfolio_id, "cache_type": cache_type, "at": at, "key_hash": key_hash}
    if as_of is not None:
        params["as_of"] = as_of
    name = f"sp_cached_document_{len(params)}"  # execute_prepared's name for it
    execute = conn.connection.info.get(name) if is_postgres(conn) else None
    if execute is None:  # prepared on this connection here
        return execute_prepared(conn, "sp_cached_document", _cached_document_stmt(as_of is not None), params)
    # The hot path of every cached GET: straight on the driver's cursor, rows as plain named tuples
    # (SQLAlchemy's result machinery cost about as much CPU as the rest of a cache hit).
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.execute(execute, params)
        return [CachedRow(*row) for row in cur.fetchall()]


@lru_cache(maxsize=1)
def _read_cache_stmt() -> sa.Select:
    c = portfolio_analytics_cache.c
    return sa.select(c.data).where(
        c.portfolio_id == sa.bindparam("pid", type_=PortfolioId),
        c.cache_type == sa.bindparam("cache_type"),
        c.cache_key == sa.bindparam("cache_key"),
        c.valid_until > sa.bindparam("at", type_=sa.DateTime(timezone=True)),
    )


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
        bulk_insert(conn, portfolio_analytics_cache, frame if frame is not None else pd.DataFrame(records))
        return
    for cache_type in types:
        ids = [p for t, p in pairs if t == cache_type]
        for chunk in chunks(ids):
            conn.execute(portfolio_analytics_cache.delete().where(c.cache_type == cache_type, c.portfolio_id.in_(chunk)))
    if len(pairs) > 1000:
        bulk_insert(conn, portfolio_analytics_cache, frame if frame is not None else pd.DataFrame(records))
    else:
        upsert(conn, portfolio_analytics_cache, records if records is not None else frame.to_dict("records"))


_REPLACE_ONE_SQL = (
    # One statement, so one round trip in autocommit and still atomic: the older entries of the
    # portfolio and type go (they can never be hit again) and this one is written.
    f"WITH gone AS (DELETE FROM {portfolio_analytics_cache.name} WHERE portfolio_id = %(pid)s "
    "AND cache_type = %(cache_type)s AND cache_key <> %(cache_key)s) "
    f"INSERT INTO {portfolio_analytics_cache.name} (portfolio_id, cache_type, cache_key, data, valid_until) "
    "VALUES (%(pid)s, %(cache_type)s, %(cache_key)s, %(data)s, %(valid_until)s) "
    "ON CONFLICT (portfolio_id, cache_type, cache_key) DO UPDATE SET data = EXCLUDED.data, "
    "valid_until = EXCLUDED.valid_until"
)


def replace_one(engine: Engine, portfolio_id: str, cache_type: str, cache_key: str, data: str,
                valid_until: dt.datetime) -> None:
    """Store one entry in place of the portfolio's others of that type (after a cache miss), atomically.

    On PostgreSQL one statement on an autocommit connection; elsewhere write_cache in a transaction.
    """
    row = {"portfolio_id": portfolio_id, "cache_type": cache_type, "cache_key": cache_key, "data": data,
           "valid_until": valid_until}
    if not is_postgres(engine):
        with engine.begin() as conn:
            write_cache(conn, [row])
        return
    with autocommit(engine).connect() as conn:
        conn.exec_driver_sql(_REPLACE_ONE_SQL, {**row, "pid": portfolio_id})


def delete_cache(conn: Connection, portfolio_id: str | None = None) -> int:
    stmt = portfolio_analytics_cache.delete()
    if portfolio_id is not None:
        stmt = stmt.where(portfolio_analytics_cache.c.portfolio_id == portfolio_id)
    return conn.execute(stmt).rowcount
