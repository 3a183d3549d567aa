"""The stored first date partition (table `partition_window`): read, initialised once, moved."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.storage.dialect import insert_ignore
from symbol_pipeline.storage.schema import partition_window

_ROW = 1


def read_first_date(conn: Connection) -> dt.date | None:
    """The stored first date partition, or None before the first process stored one."""
    return conn.execute(sa.select(partition_window.c.first_date).where(partition_window.c.id == _ROW)).scalar()


def initialise_first_date(conn: Connection, first_date: dt.date, by: str) -> dt.date:
    """Store `first_date` unless a row exists; the stored value either way.

    Two processes starting on a fresh database race here: the primary key lets one insert win and
    both read the winner, so they build the same definitions.
    """
    insert_ignore(conn, partition_window, [{"id": _ROW, "first_date": first_date, "moved_by": by[:64]}])
    stored = read_first_date(conn)
    assert stored is not None
    return stored


def write_first_date(conn: Connection, first_date: dt.date, by: str) -> None:
    """Set the first date partition (the window move)."""
    updated = conn.execute(
        partition_window.update().where(partition_window.c.id == _ROW)
        .values(first_date=first_date, moved_by=by[:64], moved_at=sa.func.now())
    ).rowcount
    if not updated:
        initialise_first_date(conn, first_date, by)
