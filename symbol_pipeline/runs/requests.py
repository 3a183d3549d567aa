"""Runs asked of the instance: a request row, the daemon that serves it, the runs it became.

The CLI and the HTTP API write a `pipeline_run_requests` row; `run_request_sensor` (under
`dagster-daemon run`) calls `advance_requests` on every tick, which turns each open request
into run requests, factor_returns first and the symbol layer once it succeeded, and records
the runs and the outcome on the row. Every decision is read from the runs already on the
instance, so a tick that was lost is simply made again (the run keys keep it idempotent).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from sqlalchemy.engine import Engine

from symbol_pipeline.lib import sessions
from symbol_pipeline.lib.run_dates import InvalidRunDateError, check_run_date
from symbol_pipeline.runs.instance import get_instance
from symbol_pipeline.runs.keys import (
    BACKFILL_RUN_KIND,
    DAILY_RUN_KIND,
    REQUEST_ID_TAG,
    REQUEST_PART_TAG,
    RUN_KIND_TAG,
    date_range_tags,
    dates_in_range,
    range_tags,
)
from symbol_pipeline.runs.submit import FACTOR_RETURNS_JOB, SYMBOL_LAYER_JOB, symbol_batch_status, symbol_blocks
from symbol_pipeline.storage import run_requests as store
from symbol_pipeline.storage.run_requests import OpenRequestError, RunRequestRow

__all__ = [
    "DaemonNotServingError", "DailyBatchRequest", "InvalidRunDateError", "OpenRequestError", "RunRequestRow",
    "check_run_date",
]

# The daemons a request needs: the sensor turns it into runs, the queue launches them.
HEARTBEAT_MAX_AGE_SECONDS = 60.0
DAEMON_COMMAND = "dagster-daemon run"
FACTOR_PART = "factor_returns"
WILL_RETRY_TAG = "dagster/will_retry"
_RUN_KINDS = {"daily": DAILY_RUN_KIND, "backfill": BACKFILL_RUN_KIND}
_UNFINISHED = (
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING,
)


def required_daemons(instance: dg.DagsterInstance) -> list[str]:
    needed = ["SENSOR"]
    if type(instance.run_coordinator).__name__ == "QueuedRunCoordinator":
        needed.append("QUEUED_RUN_COORDINATOR")
    return needed


def missing_daemons(instance: dg.DagsterInstance, now: float | None = None) -> list[str]:
    """The daemons a request needs whose last heartbeat is older than a minute (or absent)."""
    now = time.time() if now is None else now
    beats = instance.get_daemon_heartbeats()
    return [
        name for name in required_daemons(instance)
        if name not in beats or now - beats[name].timestamp > HEARTBEAT_MAX_AGE_SECONDS
    ]


def daemon_serving(instance: dg.DagsterInstance) -> bool:
    return not missing_daemons(instance)


def request_runs(
    engine: Engine, instance: dg.DagsterInstance, kind: str, first_date: dt.date, last_date: dt.date,
    symbols: Sequence[str] | None, requested_by: str,
) -> int:
    """Write a request for the sensor; its id. OpenRequestError while a daily run of that date is
    requested, queued or running (also one the schedule started)."""
    if kind == "daily":
        open_row = store.open_daily_request(engine, first_date)
        if open_row is not None:
            settle_request(engine, instance, open_row)
        running = active_daily_runs(instance, first_date)
        if running:
            raise OpenRequestError(RunRequestRow(
                id=0, kind="daily", first_date=first_date, last_date=first_date, symbols=None,
                requested_by="schedule", status="running", run_ids=[r.run_id for r in running], message=None,
            ))
    return store.create_request(engine, kind, first_date, last_date, symbols, requested_by)


def active_daily_runs(instance: dg.DagsterInstance, date: dt.date) -> list[dg.DagsterRun]:
    """Daily runs covering `date` that have not ended."""
    runs = instance.get_runs(dg.RunsFilter(tags={RUN_KIND_TAG: DAILY_RUN_KIND}, statuses=list(_UNFINISHED)))
    day = date.isoformat()
    return [r for r in runs if (span := dates_in_range(r.tags)) and span[0] <= day <= span[1]]


def runs_of_request(instance: dg.DagsterInstance, request_id: int) -> list[dg.DagsterRun]:
    """The request's runs, oldest first."""
    return list(reversed(instance.get_runs(dg.RunsFilter(tags={REQUEST_ID_TAG: str(request_id)}))))


def _latest_by_part(runs: list[dg.DagsterRun]) -> dict[str, dg.DagsterRun]:
    """The newest run of each part: a retried run replaces the one it retried."""
    return {r.tags.get(REQUEST_PART_TAG, ""): r for r in runs}


def _finished(run: dg.DagsterRun) -> bool:
    return run.status not in _UNFINISHED and run.tags.get(WILL_RETRY_TAG) != "true"


def plan_request(
    instance: dg.DagsterInstance, row: RunRequestRow
) -> tuple[list[dg.RunRequest], str, list[str], str | None]:
    """(run requests to make, status, run ids, message) for one open request."""
    runs = runs_of_request(instance, row.id)
    run_ids = [r.run_id for r in runs]
    d1, d2 = row.first_date.isoformat(), row.last_date.isoformat()
    # A daily request's runs are keyed by its date: the same date is never started twice by one
    # request, and the open-request index keeps a second request for it out while this one runs.
    key = f"{row.kind}:{d1}" if row.kind == "daily" else f"{row.kind}:{d1}..{d2}"
    key = f"{key}:request-{row.id}"
    tags = {RUN_KIND_TAG: _RUN_KINDS.get(row.kind, row.kind), REQUEST_ID_TAG: str(row.id)}
    parts = _latest_by_part(runs)
    factor = parts.get(FACTOR_PART)
    if factor is None:
        request = dg.RunRequest(
            run_key=f"{key}:{FACTOR_PART}", job_name=FACTOR_RETURNS_JOB,
            tags={**date_range_tags(d1, d2), **tags, REQUEST_PART_TAG: FACTOR_PART},
        )
        return [request], "requested", run_ids, None
    if not _finished(factor):
        return [], "running", run_ids, None
    if factor.status != dg.DagsterRunStatus.SUCCESS:
        return [], "failed", run_ids, f"run {factor.run_id} ({FACTOR_RETURNS_JOB}) {factor.status.value}"
    blocks = symbol_blocks(instance, row.symbols)
    if not blocks:
        return [], "failed", run_ids, "no symbols to run: the `symbol` partition has none of them"
    wanted = {f"symbols:{i}": block for i, block in enumerate(blocks)}
    missing = [
        dg.RunRequest(
            run_key=f"{key}:{part}", job_name=SYMBOL_LAYER_JOB,
            tags={**range_tags(d1, d2, first, last), **tags, REQUEST_PART_TAG: part},
        )
        for part, (first, last) in wanted.items() if part not in parts
    ]
    layer = [parts[p] for p in wanted if p in parts]
    if missing or not all(_finished(r) for r in layer):
        return missing, "running", run_ids, None
    failed = [r for r in layer if r.status != dg.DagsterRunStatus.SUCCESS]
    if failed:
        return [], "failed", run_ids, "; ".join(f"run {r.run_id} {r.status.value}" for r in failed)
    return [], "succeeded", run_ids, None


def settle_request(engine: Engine, instance: dg.DagsterInstance, row: RunRequestRow) -> list[dg.RunRequest]:
    """Record the request's progress on its row; the run requests still to make."""
    requests, status, run_ids, message = plan_request(instance, row)
    if (status, run_ids, message) != (row.status, row.run_ids, row.message):
        store.update_request(engine, row.id, status, run_ids, message)
    return requests


def advance_requests(engine: Engine, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """One sensor tick over every open request (onboard requests are the onboarding sensor's)."""
    requests: list[dg.RunRequest] = []
    for row in store.open_requests(engine):
        if row.kind == "onboard":
            continue
        requests.extend(settle_request(engine, instance, row))
    return requests


def get_request(engine: Engine, request_id: int) -> RunRequestRow | None:
    return store.get_request(engine, request_id)


class DaemonNotServingError(Exception):
    """No daemon serves the instance: a request row would wait for nobody."""

    def __init__(self, missing: Sequence[str]):
        self.missing = list(missing)
        super().__init__(f"no Dagster daemon serves this instance (no recent {' or '.join(self.missing)} "
                         f"heartbeat): start `{DAEMON_COMMAND}` with the same DAGSTER_HOME")


@dataclass(frozen=True)
class DailyBatchRequest:
    """A daily run asked of the daemon: its date and the request row's id."""

    date: dt.date
    request_id: int


def request_daily_batch(
    engine: Engine, instance: dg.DagsterInstance, date: dt.date, requested_by: str
) -> DailyBatchRequest:
    """Ask the daemon for the daily run of `date` (a request row); it never starts a process itself.

    DaemonNotServingError when no daemon would read the row; OpenRequestError, carrying the open
    request (or the running daily run, id 0), while a daily run of that date is requested, queued
    or running."""
    missing = missing_daemons(instance)
    if missing:
        raise DaemonNotServingError(missing)
    return DailyBatchRequest(date, request_runs(engine, instance, "daily", date, date, None, requested_by))


def request_daily_symbol_batch(
    engine: Engine, data_dir: Path, date: dt.date | None, requested_by: str
) -> DailyBatchRequest:
    """The daily run on the instance under `data_dir` (default: the latest session; the caller
    checked a given date with check_run_date), as `request_daily_batch`."""
    day = sessions.latest_completed_session() if date is None else date
    sessions.require_session(day)
    with get_instance(data_dir) as instance:
        return request_daily_batch(engine, instance, day, requested_by)


def daily_batch_status(data_dir: Path) -> dict:
    """The latest daily batch on the instance under `data_dir`."""
    with get_instance(data_dir) as instance:
        return symbol_batch_status(instance)
