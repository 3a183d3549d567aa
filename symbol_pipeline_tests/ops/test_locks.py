"""date_locks: two holders of the same date wait for each other; different dates do not."""

from __future__ import annotations

import threading

from symbol_pipeline.storage.locks import date_locks, lock_key, locked_elsewhere


def test_lock_keys_are_stable_and_distinct():
    assert lock_key("2024-06-14") == lock_key(__import__("datetime").date(2024, 6, 14))
    assert lock_key("2024-06-14") != lock_key("2024-06-13")
    assert -(2**63) <= lock_key("2024-06-14") < 2**63


def _hold(engine, dates, started: threading.Event, release: threading.Event, order: list[str]):
    with date_locks(engine, dates):
        started.set()
        assert release.wait(30)
        order.append("holder releasing")


def test_same_dates_wait_other_dates_do_not(ops_env, env_engine):
    # No clock: a lock not waited on never calls wait_log; a lock waited on calls it once, and
    # is held only after the holder let go. The holder lets go when the waiter says it waits.
    started, release, order = threading.Event(), threading.Event(), []
    holder = threading.Thread(target=_hold, args=(env_engine, ["2024-06-14", "2024-06-13"], started, release, order))
    holder.start()
    assert started.wait(10)
    assert locked_elsewhere(env_engine, "2024-06-14")

    not_waited: list[str] = []
    with date_locks(env_engine, ["2024-06-12"], wait_log=not_waited.append):  # disjoint dates
        assert locked_elsewhere(env_engine, "2024-06-14")  # the holder still holds its dates
    assert not_waited == []

    waited: list[str] = []

    def wait_log(message: str) -> None:
        waited.append(message)
        release.set()

    with date_locks(env_engine, ["2024-06-14", "2024-06-17"], wait_log=wait_log) as held:
        order.append("waiter holding")
    holder.join()
    assert held == ["2024-06-14", "2024-06-17"]
    assert waited == ["waiting for another run writing 2024-06-14"]
    assert order == ["holder releasing", "waiter holding"]
    assert not locked_elsewhere(env_engine, "2024-06-14")


def test_released_when_the_block_raises(ops_env, env_engine):
    try:
        with date_locks(env_engine, ["2024-06-14"]):
            raise ValueError("boom")
    except ValueError:
        pass
    assert not locked_elsewhere(env_engine, "2024-06-14")
