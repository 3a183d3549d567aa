"""The daily schedule: after the US close, one run for the whole universe on that session.

One run, not one per symbol: the RunRequest carries a partition range over the date × the
first..last key of the dynamic `symbol` partition (docs/architecture.md; build_schedule_from_partitioned_job
would make one run per symbol). The run's cost depends on the number of symbols only: no
portfolio is touched by it; portfolios are refreshed once, after it succeeds, by
`symbol_layer_success_sensor`.

Inactive symbols. A range over dynamic keys covers every key inserted between its two ends,
delisted and failed (`error`) symbols included, and there is no way to leave holes in one range.
We keep them in the range and let the assets skip them (`_run_scope` drops delisted and error
symbols before any fetch or computation), because:
- one contiguous range is what keeps it one run; cutting the universe into blocks of active
  neighbours would make one run per hole, and the number of holes only grows with time;
- removing a key from the dynamic partition would erase the partition status of that symbol's
  history, which is real data that portfolios still read as of earlier dates;
- the price of a skipped symbol is two bookkeeping events per asset (planned + materialised),
  batched with the rest (deploy/dagster.env), about a millisecond each;
- a symbol that comes back (re-listed, or an error fixed and set `active` again) needs no
  change to the schedule: it is already in the range.
The trade-off, said in the docs: their partitions show as materialised on days when nothing was
computed for them. The truth about a symbol is its status in `symbol_universe` (`symbols status`),
not the partition colour. Pending symbols are in the range too, computed, and settled
active/error by the betas step.

The regressor ETFs' own `factor_returns` (date-only partitions) cannot share a job with the
date × symbol assets, so `factor_returns_daily_schedule` requests it on the same tick and the
same session. The two runs need no ordering: symbol_prices loads the ETFs' closes itself, and
the date locks (storage/locks.py) keep them from writing that date at the same moment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import dagster as dg

from symbol_pipeline.defs.symbols.jobs import factor_returns_job, symbol_layer_job
from symbol_pipeline.lib import sessions
from symbol_pipeline.runs.keys import DAILY_RUN_KIND, RUN_KIND_TAG, SYMBOL_DIMENSION, range_tags

_EXCHANGE_TZ = ZoneInfo(sessions.EXCHANGE_TIMEZONE)


def scheduled_session(context: dg.ScheduleEvaluationContext) -> dt.date | None:
    """The session the tick is for: its date in New York, or None on a non-session day."""
    when = context.scheduled_execution_time
    if when is None:
        return None
    day = when.astimezone(dt.timezone.utc).astimezone(_EXCHANGE_TZ).date()
    return day if sessions.is_session(day) else None


def _tick_date(context: dg.ScheduleEvaluationContext) -> str:
    when = context.scheduled_execution_time
    return when.astimezone(_EXCHANGE_TZ).date().isoformat() if when else "?"


def _on_sessions(
    name: str, job: dg.UnresolvedAssetJobDefinition, cron: str, timezone: str, description: str,
    request: Callable[[dg.ScheduleEvaluationContext, str], dg.RunRequest | dg.SkipReason],
) -> dg.ScheduleDefinition:
    """A schedule at `cron` that skips non-sessions and asks `request` for the session's run."""

    @dg.schedule(
        name=name, job=job, cron_schedule=cron, execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING, description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        day = scheduled_session(context)
        if day is None:
            return dg.SkipReason(f"{_tick_date(context)} is not an NYSE trading session")
        return request(context, day.isoformat())

    return _schedule


def _universe_run(context: dg.ScheduleEvaluationContext, day: str) -> dg.RunRequest | dg.SkipReason:
    symbols = context.instance.get_dynamic_partitions(SYMBOL_DIMENSION)
    if not symbols:
        return dg.SkipReason("the dynamic `symbol` partition is empty: onboard symbols first")
    return dg.RunRequest(
        run_key=day, tags={**range_tags(day, day, symbols[0], symbols[-1]), RUN_KIND_TAG: DAILY_RUN_KIND}
    )


def _etf_run(_: dg.ScheduleEvaluationContext, day: str) -> dg.RunRequest:
    return dg.RunRequest(run_key=day, partition_key=day, tags={RUN_KIND_TAG: DAILY_RUN_KIND})


def build_symbol_schedules(cron: str, timezone: str) -> list[dg.ScheduleDefinition]:
    """The daily schedules at `cron` in `timezone` (settings read by definitions.py)."""
    return [
        _on_sessions(
            "symbol_daily_schedule", symbol_layer_job, cron, timezone,
            "After the close on each NYSE session: one run over that date × every symbol key.", _universe_run,
        ),
        _on_sessions(
            "factor_returns_daily_schedule", factor_returns_job, cron, timezone,
            "The regressor ETFs' returns for the session, on the same tick as symbol_daily_schedule.", _etf_run,
        ),
    ]
