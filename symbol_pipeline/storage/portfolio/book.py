"""Portfolios and their positions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.storage.dialect import chunks, is_postgres, read_frame, take_write_lock
from symbol_pipeline.storage.latest import dates_subquery
from symbol_pipeline.storage.portfolio import now
from symbol_pipeline.storage.portfolio_schema import (
    PortfolioId,
    portfolio_analytics_cache,
    portfolio_equity,
    portfolio_exposure_summary,
    portfolio_factor_exposures,
    portfolios,
    position_quantities,
    positions,
)
from symbol_pipeline.storage.schema import symbol_prices_daily


def insert_portfolio(conn: Connection, portfolio_id: str, owner_id: int, name: str, equity: float,
                     currency: str, effective_date: dt.date) -> None:
    """The portfolio and its first equity row."""
    conn.execute(
        portfolios.insert().values(id=portfolio_id, owner_id=owner_id, name=name, equity=equity, currency=currency)
    )
    conn.execute(portfolio_equity.insert().values(portfolio_id=portfolio_id, effective_date=effective_date,
                                                  equity=equity))


def record_equity(conn: Connection, portfolio_id: str, effective_date: dt.date, equity: float) -> None:
    """Append an equity row; `portfolios.equity` becomes the equity in force on the latest date."""
    e = portfolio_equity.c
    conn.execute(portfolio_equity.insert().values(portfolio_id=portfolio_id, effective_date=effective_date,
                                                  equity=equity))
    latest = (sa.select(e.equity).where(e.portfolio_id == portfolio_id)
              .order_by(e.effective_date.desc(), e.id.desc()).limit(1).scalar_subquery())
    conn.execute(portfolios.update().where(portfolios.c.id == portfolio_id).values(equity=latest, updated_at=now()))


def equity_history(conn: Connection, portfolio_id: str):
    """Rows (effective_date, equity, created_at) of the portfolio, in the order they apply."""
    e = portfolio_equity.c
    return conn.execute(sa.select(e.effective_date, e.equity, e.created_at).where(e.portfolio_id == portfolio_id)
                        .order_by(e.effective_date, e.id)).all()


def delete_portfolio(conn: Connection, portfolio_id: str) -> int:
    """Delete the portfolio with its positions, quantity and equity history and derived rows; 1 if it existed.

    Explicit deletes rather than ON DELETE CASCADE alone: SQLite enforces foreign keys only when
    the connection asked for it, and the derived tables have no foreign key at all.
    """
    ids = sa.select(positions.c.id).where(positions.c.portfolio_id == portfolio_id).scalar_subquery()
    conn.execute(position_quantities.delete().where(position_quantities.c.position_id.in_(ids)))
    conn.execute(positions.delete().where(positions.c.portfolio_id == portfolio_id))
    conn.execute(portfolio_equity.delete().where(portfolio_equity.c.portfolio_id == portfolio_id))
    for table in (portfolio_analytics_cache, portfolio_factor_exposures, portfolio_exposure_summary):
        conn.execute(table.delete().where(table.c.portfolio_id == portfolio_id))
    return conn.execute(portfolios.delete().where(portfolios.c.id == portfolio_id)).rowcount


def portfolio_row(conn: Connection, portfolio_id: str):
    return conn.execute(sa.select(portfolios).where(portfolios.c.id == portfolio_id)).first()


def lock_portfolio(conn: Connection, portfolio_id: str):
    """The portfolio's row, locked until the transaction ends; None when there is none (any more).

    Every change to a portfolio, its equity or its positions takes this lock first, so changes to
    one portfolio run one at a time and each reads what the previous one committed. A row lock
    (`SELECT ... FOR UPDATE`) on PostgreSQL: a second DELETE waits for the first and then finds
    no row. SQLite has no row locks; its write lock is taken instead (`take_write_lock`).
    """
    take_write_lock(conn)
    return conn.execute(sa.select(portfolios).where(portfolios.c.id == portfolio_id).with_for_update()).first()


def lock_portfolio_of_position(conn: Connection, position_id: int) -> None:
    """Lock the portfolio a position belongs to (`lock_portfolio`; a position never changes portfolio),
    so that the position read next is the one the previous change committed. Nothing if no such position."""
    portfolio_id = conn.execute(sa.select(positions.c.portfolio_id).where(positions.c.id == position_id)).scalar()
    if portfolio_id is not None:
        lock_portfolio(conn, portfolio_id)


def update_portfolio(conn: Connection, portfolio_id: str, **values: Any) -> None:
    conn.execute(portfolios.update().where(portfolios.c.id == portfolio_id).values(updated_at=now(), **values))


def list_portfolios(conn: Connection, owner_id: int | None = None, limit: int | None = None, offset: int = 0):
    """A page of portfolios, oldest first, and how many there are in all: (rows, total)."""
    stmt = sa.select(portfolios).order_by(portfolios.c.created_at, portfolios.c.id)
    count = sa.select(sa.func.count()).select_from(portfolios)
    if owner_id is not None:
        stmt = stmt.where(portfolios.c.owner_id == owner_id)
        count = count.where(portfolios.c.owner_id == owner_id)
    return conn.execute(stmt.limit(limit).offset(offset)).all(), conn.execute(count).scalar_one()


def bump_version(conn: Connection, portfolio_id: str) -> None:
    """Make every cache entry computed from the portfolio's previous state unreachable."""
    conn.execute(portfolios.update().where(portfolios.c.id == portfolio_id)
                 .values(version=portfolios.c.version + 1))


def equity_and_version(conn: Connection, portfolio_ids: Sequence[str] | None) -> dict[str, tuple[float, int]]:
    """Per portfolio (all when None): (equity, version)."""
    stmt = sa.select(portfolios.c.id, portfolios.c.equity, portfolios.c.version)
    if portfolio_ids is None:
        return {r.id: (r.equity, r.version) for r in conn.execute(stmt)}
    out: dict[str, tuple[float, int]] = {}
    for chunk in chunks(list(portfolio_ids)):
        out.update({r.id: (r.equity, r.version) for r in conn.execute(stmt.where(portfolios.c.id.in_(chunk)))})
    return out


def insert_positions(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert positions (each with its entry_date) and their first quantity row, effective from it."""
    if not rows:
        return []
    # One INSERT ... RETURNING per batch of rows (SQLAlchemy's "insertmanyvalues"), not a round trip per row.
    ids = list(conn.execute(positions.insert().returning(positions.c.id, sort_by_parameter_order=True),
                            [dict(r) for r in rows]).scalars())
    conn.execute(position_quantities.insert(), [
        {"position_id": i, "effective_date": r["entry_date"], "quantity": r["quantity"]} for i, r in zip(ids, rows)
    ])
    return ids


def record_quantity(conn: Connection, position_id: int, effective_date: dt.date, quantity: float) -> None:
    """Append a quantity row; `positions.quantity` becomes the quantity recorded for the latest date."""
    q = position_quantities.c
    conn.execute(position_quantities.insert().values(position_id=position_id, effective_date=effective_date,
                                                     quantity=quantity))
    latest = (sa.select(q.quantity).where(q.position_id == position_id)
              .order_by(q.effective_date.desc(), q.id.desc()).limit(1).scalar_subquery())
    conn.execute(positions.update().where(positions.c.id == position_id).values(quantity=latest, updated_at=now()))


def quantity_history(conn: Connection, position_id: int):
    """Rows (id, effective_date, quantity, created_at) of the position, in the order they apply."""
    q = position_quantities.c
    return conn.execute(sa.select(q.id, q.effective_date, q.quantity, q.created_at)
                        .where(q.position_id == position_id).order_by(q.effective_date, q.id)).all()


def move_entry(conn: Connection, position_id: int, first_row_id: int, entry_date: dt.date) -> None:
    """Correct a position's entry date: its first quantity row applies from the new date."""
    conn.execute(position_quantities.update().where(position_quantities.c.id == first_row_id)
                 .values(effective_date=entry_date))
    conn.execute(positions.update().where(positions.c.id == position_id).values(entry_date=entry_date, updated_at=now()))


def position_row(conn: Connection, position_id: int):
    """The position with its portfolio's owner, or None."""
    return conn.execute(
        sa.select(positions, portfolios.c.owner_id)
        .join(portfolios, portfolios.c.id == positions.c.portfolio_id)
        .where(positions.c.id == position_id)
    ).first()


def positions_by_id(conn: Connection, position_ids: Sequence[int]):
    """The positions with these ids, in id order."""
    rows = []
    for chunk in chunks(list(position_ids)):
        rows.extend(conn.execute(sa.select(positions).where(positions.c.id.in_(chunk))).all())
    return sorted(rows, key=lambda r: r.id)


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
            return read_frame(conn, stmt)
        return pd.DataFrame(conn.execute(stmt).all(), columns=names)
    frames = [pd.DataFrame(conn.execute(stmt.where(positions.c.portfolio_id.in_(chunk))).all(), columns=names)
              for chunk in chunks(list(portfolio_ids))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=names)


def portfolios_holding(conn: Connection, symbols: Sequence[str]) -> list[str]:
    """Ids of the portfolios with an open position in any of `symbols`, sorted."""
    found: set[str] = set()
    for chunk in chunks(list(symbols)):
        stmt = sa.select(positions.c.portfolio_id).where(
            positions.c.exit_date.is_(None), positions.c.symbol.in_(chunk)
        ).distinct()
        found.update(str(pid) for pid in conn.execute(stmt).scalars())
    return sorted(found)


@lru_cache(maxsize=2)
def _positions_snapshot_stmt(with_as_of: bool) -> sa.Select:
    """Built once: on the hot path, building and hashing a statement costs more than running it."""
    px = symbol_prices_daily
    pid = sa.bindparam("pid", type_=PortfolioId)
    dates = dates_subquery(sa.bindparam("as_of", type_=sa.Date) if with_as_of else None)
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
    """A cache miss's read in one round trip: one row per open position (or one row with symbol NULL).

    Columns owner_id, equity, prices_date, betas_date, symbol, quantity, entry_price, close (the
    close on prices_date, NULL when the symbol has none that day); no rows when no such portfolio.
    """
    params = {"pid": portfolio_id} if as_of is None else {"pid": portfolio_id, "as_of": as_of}
    return conn.execute(_positions_snapshot_stmt(as_of is not None), params).all()
