"""date_locks: two holders of the same date wait for each other; different dates do not."""

from __future__ import annotations

import threading
import time

from symbol_pipeline.storage.locks import date_locks, lock_key, locked_elsewhere


def test_lock_keys_are_stable_and_distinct():
    assert lock_key("2024-06-14") == lock_key(__import__("datetime").date(2024, 6, 14))
    assert lock_key("2024-06-14") != lock_key("2024-06-13")
    assert -(2**63) <= lock_key("2024-06-14") < 2**63


def _hold(engine, dates, seconds, started: threading.Event):
    with date_locks(engine, dates):
        started.set()
        time.sleep(seconds)


def test_same_dates_wait_other_dates_do_not(ops_env, engine):
    started = threading.Event()
    holder = threading.Thread(target=_hold, args=(engine, ["2024-06-14", "2024-06-13"], 0.8, started))
    holder.start()
    assert started.wait(10)
    assert locked_elsewhere(engine, "2024-06-14")

    t0 = time.perf_counter()
    with date_locks(engine, ["2024-06-12"]):  # disjoint: no wait
        assert time.perf_counter() - t0 < 0.5

    waited: list[str] = []
    t0 = time.perf_counter()
    with date_locks(engine, ["2024-06-14", "2024-06-17"], wait_log=waited.append) as held:
        elapsed = time.perf_counter() - t0
    holder.join()
    assert held == ["2024-06-14", "2024-06-17"]
    assert elapsed > 0.4 and waited == ["waiting for another run writing 2024-06-14"]
    assert not locked_elsewhere(engine, "2024-06-14")


def test_released_when_the_block_raises(ops_env, engine):
    try:
        with date_locks(engine, ["2024-06-14"]):
            raise ValueError("boom")
    except ValueError:
        pass
    assert not locked_elsewhere(engine, "2024-06-14")
