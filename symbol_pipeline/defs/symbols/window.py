"""The daily window move as a Dagster job and schedule (runs/window.py does the work)."""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at decoration time.

import datetime as dt

import dagster as dg
import pandas as pd

from symbol_pipeline.defs.partitions import symbol_date_partitions, trading_date_partitions
from symbol_pipeline.defs.resources import DatabaseResource
from symbol_pipeline.defs.symbols.schedules import scheduled_session
from symbol_pipeline.runs import window as window_runs
from symbol_pipeline.services.window import WindowRule

PARTITION_WINDOW_JOB = "partition_window_job"
SCHEDULED_TIME_TAG = "symbol_pipeline/window_as_of"


def partitions_for(first_date: dt.date) -> dg.PartitionsDefinition:
    """The symbol assets' partitions definition for a window starting at `first_date`."""
    return symbol_date_partitions(trading_date_partitions(first_date.isoformat()))


def build_partition_window_job(rule: WindowRule) -> dg.JobDefinition:
    """A one-op job that moves the window to the last N sessions as of its schedule tick."""

    @dg.op(name="move_partition_window", tags={"kind": "dagster"})
    def move_partition_window(context: dg.OpExecutionContext, database: DatabaseResource) -> dg.Output:
        """Move the first date partition, drop the event log before it, re-stamp the status caches."""
        as_of = context.run.tags.get(SCHEDULED_TIME_TAG)
        report = window_runs.move_window(
            context.instance, database.engine(), rule, partitions_for,
            now=pd.Timestamp(as_of) if as_of else None, run=context.run, by=f"run {context.run_id[:8]}",
        )
        for line in report.lines():
            context.log.info(line)
        return dg.Output(None, metadata={
            "first_date": str(report.plan.new_start), "moved": report.plan.moves, "reason": report.plan.reason,
            "reload": report.reload, **{k: v for k, v in report.pruned.items()}, "seconds": round(report.seconds, 2),
        })

    @dg.job(name=PARTITION_WINDOW_JOB, description="Moves the date partitions to the last N completed sessions.")
    def partition_window_job() -> None:
        move_partition_window()

    return partition_window_job


def partition_window_schedule(cron: str, timezone: str) -> dg.ScheduleDefinition:
    """On each session's tick (the daily run's), the window move for that session."""

    @dg.schedule(name="partition_window_schedule", job_name=PARTITION_WINDOW_JOB, cron_schedule=cron,
                 execution_timezone=timezone, default_status=dg.DefaultScheduleStatus.RUNNING,
                 description="Moves the date partitions to the last N sessions after each session's close.")
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        day = scheduled_session(context)
        if day is None or context.scheduled_execution_time is None:
            return dg.SkipReason("not an NYSE trading session: the window stays")
        when = context.scheduled_execution_time.isoformat()
        return dg.RunRequest(run_key=f"window-{day}", tags={SCHEDULED_TIME_TAG: when})

    return _schedule
