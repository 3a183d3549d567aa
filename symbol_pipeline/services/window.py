"""The partition window: which sessions are date partitions, the same in every process.

The window is "the last N completed sessions" (SYMBOL_PIPELINE_PARTITION_SESSIONS, default 21),
but its first date is *stored* (table `partition_window`), not computed from each process's clock:
a code server loaded on Monday and a run worker started on Tuesday must build the same date
dimension, or Dagster fails the worker's run inside its own code (issue 17). The first date
changes only when the window move (`move`) sets it: the daily `partition_window_schedule`, or
`symbol-pipeline window move`. A pinned SYMBOL_PIPELINE_PARTITIONS_START overrides the stored
date and the move leaves it alone.

Dagster-free: runs/window.py does what the move needs of the instance (in-flight runs, the event
log, status caches, the code-location reload).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlalchemy.engine import Engine

from symbol_pipeline.lib import sessions
from symbol_pipeline.storage import window as store

PARTITIONS_START_ENV = "SYMBOL_PIPELINE_PARTITIONS_START"
PARTITION_SESSIONS_ENV = "SYMBOL_PIPELINE_PARTITION_SESSIONS"
DEFAULT_PARTITION_SESSIONS = 21


class WindowUnavailableError(RuntimeError):
    """The stored window could not be read: the definitions cannot be built the same as elsewhere."""


@dataclass(frozen=True)
class WindowRule:
    """The settings of the window: a pinned first date, or the number of sessions it keeps."""

    pinned_start: dt.date | None = None
    sessions: int = DEFAULT_PARTITION_SESSIONS

    def target_start(self, now: pd.Timestamp | None = None) -> dt.date:
        """Where the window should start at `now`: the pinned date, or the first of the last N
        completed sessions."""
        if self.pinned_start is not None:
            return self.pinned_start
        return sessions.window_start(sessions.latest_completed_session(now), self.sessions)


def first_date(engine: Engine, rule: WindowRule, *, now: pd.Timestamp | None = None, by: str = "first load") -> dt.date:
    """The first date partition every process uses: the pinned one, else the stored one, stored
    from the clock by the first process that finds none (`now` only matters then)."""
    if rule.pinned_start is not None:
        return rule.pinned_start
    try:
        with engine.begin() as conn:
            stored = store.read_first_date(conn)
            if stored is None:
                stored = store.initialise_first_date(conn, rule.target_start(now), by)
        return stored
    except Exception as exc:  # the database's own error, re-raised with what it means here
        raise unavailable(engine.url.render_as_string(), exc) from exc


def unavailable(url: str, exc: BaseException) -> WindowUnavailableError:
    """The error of a process that cannot read the stored window (its URL's password hidden)."""
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    return WindowUnavailableError(
        f"cannot read the partition window from the project database ({url}): {type(exc).__name__}: "
        f"{first_line}. Every process reads the first date partition there so that all build the same "
        f"definitions; start the database, or pin the window with {PARTITIONS_START_ENV}=YYYY-MM-DD in "
        f"every process"
    )


def stored_first_date(engine: Engine) -> dt.date | None:
    with engine.connect() as conn:
        return store.read_first_date(conn)


@dataclass(frozen=True)
class MovePlan:
    """What a move will do: `new_start` (== `current` when nothing moves) and why it stops short."""

    current: dt.date
    target: dt.date
    new_start: dt.date
    reason: str

    @property
    def moves(self) -> bool:
        return self.new_start != self.current


def plan_move(current: dt.date, target: dt.date, earliest_in_flight: dt.date | None, *,
              widen: bool = False) -> MovePlan:
    """The move from `current` towards `target`, deferred as far as a run or backfill in flight needs.

    A run or backfill that targets a date the move would drop fails inside Dagster once its worker
    loads the moved definitions, so the start stops at the earliest such date (the rest of the
    move happens at the next move after they finish). `widen` allows a move backwards (an operator
    recomputing older sessions); the daily move only goes forward.
    """
    if target < current and not widen:
        return MovePlan(current, target, current, f"the window already starts at {current}, before {target}")
    if target <= current:
        return MovePlan(current, target, target, "widened" if target < current else "already in place")
    if earliest_in_flight is not None and earliest_in_flight < target:
        new_start = max(current, earliest_in_flight)
        return MovePlan(current, target, new_start,
                        f"deferred to {new_start}: a run or backfill in flight targets {earliest_in_flight}")
    return MovePlan(current, target, target, "moved")


def apply_move(engine: Engine, plan: MovePlan, by: str) -> None:
    if plan.moves:
        with engine.begin() as conn:
            store.write_first_date(conn, plan.new_start, by)


def include_hint(day: dt.date, rule: WindowRule) -> str:
    """How to include `day`, a date before the window, naming the setting and the value."""
    how = (f"the window is pinned by {PARTITIONS_START_ENV}={rule.pinned_start}" if rule.pinned_start is not None
           else f"the window keeps the last {rule.sessions} sessions ({PARTITION_SESSIONS_ENV})")
    return (f"{how}; to include it set {PARTITIONS_START_ENV}={day} (or earlier), or widen the stored "
            f"window with `symbol-pipeline window move --to {day}`")


def peek_first_date(engine: Engine, rule: WindowRule, now: pd.Timestamp | None = None) -> dt.date:
    """The first date partition without writing anything (a fast check before a command opens the
    database properly): the pinned, else the stored one, else where a first process would put it."""
    if rule.pinned_start is not None:
        return rule.pinned_start
    try:
        stored = stored_first_date(engine)
    except Exception:  # no table yet, or no database: the command itself will say
        stored = None
    return stored or rule.target_start(now)
