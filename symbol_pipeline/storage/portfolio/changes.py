"""The change log of portfolios: one row per change, read by the position-change sensor."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.storage.portfolio_schema import portfolio_changes


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
