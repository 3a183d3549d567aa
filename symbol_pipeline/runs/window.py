"""The window move, on the instance: in-flight work, the event log, status caches, the reload.

`move_window` is the one step that changes the date partitions (services.window says why they are
stored). In order, it:
1. plans the move: the target is the first of the last N completed sessions; it stops at the
   earliest date a queued or running run, or an unfinished backfill, targets (defer, never cancel);
2. stores the new first date;
3. reloads the code location that ran it (a code server restarts its definitions; the webserver
   sees the new server id within seconds, the daemon within its 60 s workspace refresh);
4. drops what lies before the window from the event log (retention: the window bounds it);
5. re-stamps the six symbol assets' partition-status caches with the new identifier, keeping the
   partitions inside the window, so the first page load after the move rebuilds nothing.
Each part is idempotent: a move run twice, or cut in the middle, leaves the same state as one.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
from sqlalchemy.engine import Engine

from symbol_pipeline.lib.sessions import EXCHANGE_TIMEZONE, REGULAR_CLOSE
from symbol_pipeline.runs.keys import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG, parse_date_key
from symbol_pipeline.services import window
from symbol_pipeline.storage import event_retention

Progress = Callable[[str], None]

# The date-partitioned assets, whose partition keys start with the session.
SYMBOL_ASSETS = ("symbol_prices", "market_beta", "ir_beta", "ridge_factor_betas", "spread_factor_betas",
                 "symbol_daily_metrics")
DATE_ASSETS = ("factor_returns",)
_UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
_FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
# Runs whose records one move examines for deletion: bounded so that a move stays quick; the rest
# go at the next move.
_RUNS_PER_MOVE = 2_000


@dataclass
class MoveReport:
    plan: window.MovePlan
    reload: str = "not needed"
    pruned: dict[str, int] = field(default_factory=dict)
    restamped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        plan = self.plan
        head = (f"window: {plan.current} -> {plan.new_start} ({plan.reason})" if plan.moves
                else f"window: stays at {plan.current} ({plan.reason})")
        return [
            head,
            f"code location: {self.reload}",
            "event log: " + (", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in self.pruned.items()) or "nothing to drop"),
            "status caches: " + (", ".join(f"{k} {v}" for k, v in self.restamped.items()) or "none stored"),
            f"move step: {self.seconds:.1f} s",
        ]


def _date_of(key: str | None) -> dt.date | None:
    try:
        return parse_date_key(key) if key else None
    except ValueError:
        return None


def earliest_in_flight(instance: dg.DagsterInstance) -> dt.date | None:
    """The earliest session that an unfinished run or backfill targets (None: nothing in flight)."""
    dates: list[dt.date] = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=_UNFINISHED)):
        tags = record.dagster_run.tags
        day = _date_of(tags.get(RANGE_START_TAG)) or _date_of(tags.get(PARTITION_TAG))
        if day is not None:
            dates.append(day)
    from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus

    backfills = instance.get_backfills(filters=BulkActionsFilter(
        statuses=[BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING]))
    for backfill in backfills:
        keys: list[str] = list(backfill.partition_names or [])
        data = backfill.asset_backfill_data
        if data is not None:
            for subset in data.target_subset.partitions_subsets_by_asset_key.values():
                keys.extend(str(k) for k in subset.get_partition_keys())
        dates.extend(d for d in (_date_of(k) for k in keys) if d is not None)
    return min(dates) if dates else None


def _window_opens(first_date: dt.date) -> dt.datetime:
    """The moment a session's partition opened (its regular close), as naive UTC like Dagster's columns."""
    local = dt.datetime.combine(first_date, REGULAR_CLOSE, tzinfo=ZoneInfo(EXCHANGE_TIMEZONE))
    return local.astimezone(dt.timezone.utc).replace(tzinfo=None)


def prune_window(instance: dg.DagsterInstance, first_date: dt.date,
                 assets: Sequence[str] = (*SYMBOL_ASSETS, *DATE_ASSETS)) -> dict[str, int]:
    """Drop from the event log what the window no longer shows: every event of a partition before
    `first_date`, then the finished runs that ended before the window and have no asset event left
    (their step and log events go with them). On PostgreSQL also Dagster's superseded
    materialisations and old runs' step events (storage.event_retention.prune_events)."""
    storage = instance.event_log_storage
    keys = [dg.AssetKey(name).to_string() for name in assets]
    with storage.index_connection() as conn:
        removed = event_retention.prune_before_window(conn, keys, first_date)
    opens = _window_opens(first_date)
    if getattr(storage, "_engine", None) is not None and storage._engine.dialect.name == "postgresql":
        with storage._engine.begin() as conn:
            removed.update(event_retention.prune_events(conn, opens))
    # The oldest finished runs, kept while an asset event of theirs remains or they are younger
    # than the window (a failed run of yesterday has no materialisation, but belongs to the window).
    records = instance.get_run_records(dg.RunsFilter(statuses=_FINISHED), limit=_RUNS_PER_MOVE, ascending=True)
    old = [r.dagster_run.run_id for r in records if _before_window(r, opens, first_date)]
    with storage.index_connection() as conn:
        idle = event_retention.runs_without_asset_events(conn, opens, old)
    for run_id in idle:
        instance.delete_run(run_id)
    removed["runs_deleted"] = len(idle)
    return removed


def _before_window(record, opens: dt.datetime, first_date: dt.date) -> bool:
    """A run that ended before the window opened, or whose partitions all lie before it."""
    tags = record.dagster_run.tags
    last = _date_of(tags.get(RANGE_END_TAG)) or _date_of(tags.get(PARTITION_TAG))
    if last is not None:
        return last < first_date
    ended = record.update_timestamp
    if ended is None:
        return False
    if ended.tzinfo is not None:
        ended = ended.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return ended < opens


def _keep_from(serialized: str | None, first: str) -> str | None:
    """A serialised DefaultPartitionsSubset with the keys before `first` left out."""
    if not serialized:
        return serialized
    data = json.loads(serialized)
    keys = data["subset"] if isinstance(data, dict) else data
    kept = sorted(k for k in keys if k >= first)
    return json.dumps({**data, "subset": kept}) if isinstance(data, dict) else json.dumps(kept)


def restamp_status_caches(instance: dg.DagsterInstance, partitions_def: dg.PartitionsDefinition,
                          first_date: dt.date, assets: Sequence[str] = SYMBOL_ASSETS) -> dict[str, str]:
    """Give each asset's stored status cache the identifier of `partitions_def` (the moved window),
    keeping the partitions from `first_date` on: what a rebuild would compute, without reading the
    event log. A cache already carrying the new identifier (a reader rebuilt it) is left alone."""
    from dagster._core.definitions.partitions.context import partition_loading_context

    with partition_loading_context(dynamic_partitions_store=instance):
        new_id = partitions_def.get_serializable_unique_identifier()
    first = first_date.isoformat()
    done: dict[str, str] = {}
    for name in assets:
        key = dg.AssetKey(name)
        record = next(iter(instance.get_asset_records([key])), None)
        cached = record.asset_entry.cached_status if record else None
        if cached is None:
            continue
        if cached.partitions_def_id == new_id:
            done[name] = "current"
            continue
        try:
            value = cached._replace(
                partitions_def_id=new_id,
                serialized_materialized_partition_subset=_keep_from(cached.serialized_materialized_partition_subset, first),
                serialized_failed_partition_subset=_keep_from(cached.serialized_failed_partition_subset, first),
                serialized_in_progress_partition_subset=_keep_from(cached.serialized_in_progress_partition_subset, first),
            )
        except (ValueError, KeyError, TypeError):  # not a key-set subset: let a reader rebuild it
            done[name] = "left for a rebuild"
            continue
        instance.update_asset_cached_status_data(key, value)
        done[name] = "re-stamped"
    return done


def reload_code_location(run: dg.DagsterRun | None) -> str:
    """Reload the code server that `run` came from, so that it builds the moved window."""
    origin = None
    if run is not None and run.remote_job_origin is not None:
        origin = run.remote_job_origin.repository_origin.code_location_origin
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin

    if not isinstance(origin, GrpcServerCodeLocationOrigin):
        return ("not reloaded (no code server behind this process): a running webserver or daemon "
                "sees the new window once its code location is reloaded")
    try:
        origin.create_client().reload_code(timeout=300)
    except Exception as exc:  # the move is stored; say what to do instead of failing it
        return f"reload failed ({type(exc).__name__}: {exc}); reload the code location from the UI"
    return f"reloaded {origin.location_name}"


def move_window(
    instance: dg.DagsterInstance,
    engine: Engine,
    rule: window.WindowRule,
    partitions_for: Callable[[dt.date], dg.PartitionsDefinition],
    *,
    now: pd.Timestamp | None = None,
    to: dt.date | None = None,
    run: dg.DagsterRun | None = None,
    by: str = "window move",
) -> MoveReport:
    """The move step (module docstring). `to` sets the first date explicitly (an operator widening
    the window to recompute older sessions); otherwise the rule's target at `now`."""
    started = time.perf_counter()
    current = window.first_date(engine, rule, now=now, by=by)
    if rule.pinned_start is not None:
        plan = window.MovePlan(current, current, current, "pinned by SYMBOL_PIPELINE_PARTITIONS_START")
        return MoveReport(plan, seconds=time.perf_counter() - started)
    target = to or rule.target_start(now)
    plan = window.plan_move(current, target, earliest_in_flight(instance), widen=to is not None)
    report = MoveReport(plan)
    window.apply_move(engine, plan, by)
    if plan.moves:
        report.reload = reload_code_location(run)
    report.pruned = prune_window(instance, plan.new_start)
    report.restamped = restamp_status_caches(instance, partitions_for(plan.new_start), plan.new_start)
    report.seconds = time.perf_counter() - started
    return report
