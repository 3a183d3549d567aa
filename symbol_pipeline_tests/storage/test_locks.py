"""date_locks: two holders of the same date wait for each other; different dates do not; the
locks are taken in order, once per date, and given back however the block ends (both backends)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from symbol_pipeline.storage.dialect import make_engine
from symbol_pipeline.storage.locks import date_locks, lock_key, locked_elsewhere


def test_lock_keys_are_stable_and_distinct():
    assert lock_key("2024-06-14") == lock_key(dt.date(2024, 6, 14))
    # A digest, not Python's salted hash(): every process and release takes the same lock.
    assert lock_key("2024-06-14") == -343889221534088748
    assert lock_key("2024-06-14") != lock_key("2024-06-13")
    assert -(2**63) <= lock_key("2024-06-14") < 2**63


def _hold(engine, dates, started: threading.Event, release: threading.Event, order: list[str]):
    with date_locks(engine, dates):
        started.set()
        assert release.wait(30)
        order.append("holder releasing")


def test_same_dates_wait_other_dates_do_not(engine):
    # No clock: a lock not waited on never calls wait_log; a lock waited on calls it once, and
    # is held only after the holder let go. The holder lets go when the waiter says it waits.
    started, release, order = threading.Event(), threading.Event(), []
    holder = threading.Thread(target=_hold, args=(engine, ["2024-06-14", "2024-06-13"], started, release, order))
    holder.start()
    assert started.wait(10)
    assert locked_elsewhere(engine, "2024-06-14")

    not_waited: list[str] = []
    with date_locks(engine, ["2024-06-12"], wait_log=not_waited.append):  # disjoint dates
        assert locked_elsewhere(engine, "2024-06-14")  # the holder still holds its dates
    assert not_waited == []

    waited: list[str] = []

    def wait_log(message: str) -> None:
        waited.append(message)
        release.set()

    with date_locks(engine, ["2024-06-14", "2024-06-17"], wait_log=wait_log) as held:
        order.append("waiter holding")
    holder.join()
    assert held == ["2024-06-14", "2024-06-17"]
    assert waited == ["waiting for another run writing 2024-06-14"]
    assert order == ["holder releasing", "waiter holding"]
    assert not locked_elsewhere(engine, "2024-06-14")


def test_released_when_the_block_raises(engine):
    try:
        with date_locks(engine, ["2024-06-14"]):
            raise ValueError("boom")
    except ValueError:
        pass
    assert not locked_elsewhere(engine, "2024-06-14")


def test_the_dates_are_locked_once_each_in_order(engine):
    with date_locks(engine, ["2024-06-14", dt.date(2024, 6, 13), "2024-06-14"]) as held:
        assert held == ["2024-06-13", "2024-06-14"]
        assert locked_elsewhere(engine, "2024-06-13") and locked_elsewhere(engine, "2024-06-14")
    assert not locked_elsewhere(engine, "2024-06-13")


def test_no_dates_lock_nothing(engine):
    with date_locks(engine, []) as held:
        assert held == []


def test_a_bad_date_is_refused_before_any_lock(engine):
    with pytest.raises(ValueError), date_locks(engine, ["2024-06-14", "2024-13-01"]):
        pass
    assert not locked_elsewhere(engine, "2024-06-14")


def test_sqlite_locks_are_files_beside_the_database_or_where_told(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'pipeline.sqlite'}")
    with date_locks(engine, ["2024-06-14"]):
        assert (tmp_path / "db" / "locks" / "date-2024-06-14.lock").is_file()
    elsewhere = tmp_path / "shared-locks"
    with date_locks(engine, ["2024-06-14"], lock_dir=elsewhere):
        assert locked_elsewhere(engine, "2024-06-14", lock_dir=elsewhere)
        assert not locked_elsewhere(engine, "2024-06-14")  # another folder, another lock
    engine.dispose()
