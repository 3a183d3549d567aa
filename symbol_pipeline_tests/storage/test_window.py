"""The stored first date partition: none before the first process stores one, initialised once
(of two racing processes, both read the winner's), then moved; on both backends."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from symbol_pipeline.storage import window
from symbol_pipeline.storage.schema import partition_window


def test_initialised_once_then_moved(engine):
    with engine.begin() as conn:
        assert window.read_first_date(conn) is None
        assert window.initialise_first_date(conn, dt.date(2024, 3, 1), "first process") == dt.date(2024, 3, 1)
        # A second process that started on the same fresh database reads the first one's date.
        assert window.initialise_first_date(conn, dt.date(2024, 5, 1), "second process") == dt.date(2024, 3, 1)
    with engine.begin() as conn:
        window.write_first_date(conn, dt.date(2024, 4, 1), "window move")
    with engine.connect() as conn:
        assert window.read_first_date(conn) == dt.date(2024, 4, 1)
        rows = conn.execute(sa.select(partition_window.c.moved_by)).scalars().all()
    assert rows == ["window move"]  # one row, whoever wrote it last


def test_a_move_on_a_fresh_database_stores_the_date(engine):
    with engine.begin() as conn:
        window.write_first_date(conn, dt.date(2024, 4, 1), "x" * 100)
    with engine.connect() as conn:
        assert window.read_first_date(conn) == dt.date(2024, 4, 1)
        assert conn.execute(sa.select(partition_window.c.moved_by)).scalar() == "x" * 64  # the column's width
