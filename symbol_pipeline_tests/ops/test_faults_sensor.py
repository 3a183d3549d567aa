"""Fault: the daemon dies in the middle of a position-change sensor tick, or a position write
commits after a later one; the sensor still takes every change exactly once.

The daemon is played here step by step, with the crash points of dagster/_daemon/sensor.py: the
sensor is evaluated through `dg.build_sensor_context` (it reads the change log), the run is
created unless one with its run key exists (Dagster's dedup, with the `dagster/run_key` and
`dagster/sensor_name` tags the daemon adds), then the cursor is stored. A crash after the
evaluation stores nothing; a crash after the launch leaves the run without the cursor (the tick
found STARTED with nothing left to submit is skipped and the stored cursor is not advanced).
Every change here is its own portfolio, so "taken once" is "each portfolio in exactly one run".
"""

from __future__ import annotations

import uuid
from collections import Counter

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.test_utils import create_run_for_test

from symbol_pipeline.defs.portfolios import sensors
from symbol_pipeline.defs.portfolios.sensors import SENSOR_NAME, parse_cursor, position_change_sensor
from symbol_pipeline.defs.resources import DatabaseResource
from symbol_pipeline.runs.submit import PORTFOLIO_JOB
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.portfolio import changes as change_log

pytestmark = pytest.mark.postgres


class Daemon:
    """One sensor, ticked as the daemon ticks it, with an optional crash."""

    def __init__(self, instance: dg.DagsterInstance, url: str):
        self.instance, self.cursor = instance, None
        self.resources = {"database": DatabaseResource(url=url)}

    def tick(self, crash: str | None = None):
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, resources=self.resources)
        result = position_change_sensor(context)
        if crash == "after_evaluation":
            return result
        if isinstance(result, dg.RunRequest):
            tags = {"dagster/run_key": result.run_key, "dagster/sensor_name": SENSOR_NAME}
            if not self.instance.get_runs(dg.RunsFilter(job_name=PORTFOLIO_JOB, tags=tags)):
                create_run_for_test(self.instance, job_name=PORTFOLIO_JOB, run_config=result.run_config,
                                    tags={**result.tags, **tags})
        if crash == "after_launch":
            return result
        self.cursor = context.cursor
        return result

    def taken(self) -> Counter:
        """How many launched runs cover each portfolio."""
        runs = self.instance.get_runs(dg.RunsFilter(job_name=PORTFOLIO_JOB, tags={"dagster/sensor_name": SENSOR_NAME}))
        return Counter(pid for run in runs
                       for pid in run.run_config["ops"]["portfolio_factor_exposures"]["config"]["portfolio_ids"])


@pytest.fixture
def db(new_pg_database):
    url = new_pg_database("sp_fault_sensor")
    engine = get_engine(url)
    yield url, engine
    engine.dispose()


def _changes(engine: sa.Engine, n: int) -> list[str]:
    """`n` committed changes, each of its own portfolio; their portfolio ids."""
    pids = [str(uuid.uuid4()) for _ in range(n)]
    with engine.begin() as conn:
        for pid in pids:
            change_log.record_change(conn, pid, "positions_added")
    return pids


@pytest.mark.parametrize("crash", ["after_evaluation", "after_launch"])
def test_a_crash_mid_tick_neither_skips_nor_repeats(db, instance, crash):
    url, engine = db
    daemon = Daemon(instance, url)
    written = _changes(engine, 3)
    daemon.tick()
    written += _changes(engine, 2)
    assert isinstance(daemon.tick(crash=crash), dg.RunRequest)
    written += _changes(engine, 2)  # arrive while the daemon restarts
    daemon.tick()
    assert isinstance(daemon.tick(), dg.SkipReason)
    assert daemon.taken() == Counter(written)  # every change once: none skipped, none repeated
    assert parse_cursor(daemon.cursor) == (7, {})


def test_a_change_committed_after_a_later_one_is_taken_once(db, instance):
    url, engine = db
    daemon = Daemon(instance, url)
    written = _changes(engine, 1)
    late, late_pid = engine.connect(), str(uuid.uuid4())
    transaction = late.begin()
    change_log.record_change(late, late_pid, "positions_added")  # id 2, not committed yet
    written += _changes(engine, 1)  # id 3, committed first
    daemon.tick()
    assert daemon.taken() == Counter(written)
    last, gaps = parse_cursor(daemon.cursor)
    assert last == 3 and set(gaps) == {2}
    transaction.commit()
    late.close()
    daemon.tick()
    assert daemon.taken() == Counter([*written, late_pid])
    assert parse_cursor(daemon.cursor) == (3, {})


def test_a_rolled_back_write_leaves_a_gap_that_expires(db, instance, monkeypatch):
    url, engine = db
    daemon = Daemon(instance, url)
    with engine.connect() as killed:  # a write whose process died: its id is never committed
        with killed.begin() as transaction:
            change_log.record_change(killed, str(uuid.uuid4()), "positions_added")
            transaction.rollback()
    written = _changes(engine, 1)
    daemon.tick()
    assert set(parse_cursor(daemon.cursor)[1]) == {1}
    monkeypatch.setattr(sensors, "GAP_SECONDS", 0.0)  # as if the gap had waited its time
    written += _changes(engine, 1)
    daemon.tick()
    assert daemon.taken() == Counter(written)
    assert parse_cursor(daemon.cursor) == (3, {})
