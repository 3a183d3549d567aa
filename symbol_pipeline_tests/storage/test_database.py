"""Telling an unavailable database from a failing statement (`storage.database.outage`)."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from symbol_pipeline.storage.database import outage


def _sqlite_error(tmp_path, sql: str) -> sa_exc.DBAPIError:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.sqlite'}", connect_args={"timeout": 0.05})
    holder = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS t (x int)")
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held past the other side's busy timeout
    try:
        with pytest.raises(sa_exc.DBAPIError) as caught, engine.begin() as conn:
            conn.exec_driver_sql(sql)
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()
    return caught.value


def test_sqlite_write_lock_held_past_the_busy_timeout_is_busy(tmp_path):
    found = outage(_sqlite_error(tmp_path, "INSERT INTO t VALUES (1)"))
    assert found is not None and found.busy and found.reason == "database busy"


def test_a_bad_statement_is_not_an_outage(tmp_path):
    assert outage(_sqlite_error(tmp_path, "SELECT * FROM no_such_table")) is None
    assert outage(ValueError("not a database error")) is None


def test_a_refused_connection_is_unavailable_and_names_no_host():
    engine = sa.create_engine("postgresql+psycopg2://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 2})
    with pytest.raises(sa_exc.OperationalError) as caught:
        engine.connect()
    found = outage(caught.value)
    assert found is not None and not found.busy and found.reason == "database unavailable"


def test_an_exhausted_pool_is_busy():
    found = outage(sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"))
    assert found is not None and found.busy
