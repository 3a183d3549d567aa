"""Sensors: symbol onboarding, run failures, and what follows a successful symbol-layer run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd
from sqlalchemy.engine import Engine

from symbol_pipeline.config import get_settings
from symbol_pipeline.defs.launch import contiguous_blocks
from symbol_pipeline.defs.partitions import SYMBOL_DIMENSION, symbol_partitions, trading_date_partitions
from symbol_pipeline.defs.resources import DatabaseResource
from symbol_pipeline.defs.symbols.jobs import range_tags, symbol_layer_job
from symbol_pipeline.defs.symbols.schedules import RUN_KIND_TAG
from symbol_pipeline.lib import sessions
from symbol_pipeline.lib.factors import LONGEST_WINDOW
from symbol_pipeline.storage import onboarding, universe

ONBOARDING_RUN_KIND = "onboarding"
QUEUE_IDS_TAG = "symbol_pipeline/onboarding_queue_ids"
ONBOARDING_PART_TAG = "symbol_pipeline/onboarding_part"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# A new symbol gets partitions for the longest beta window plus a margin: enough for a
# portfolio's "latest beta on or before" to find one on any recent as-of date, and for the
# spread betas' 180 sessions. The prices step fetches the history before the first date itself.
ONBOARDING_SESSIONS = LONGEST_WINDOW + 10
# Symbols per onboarding run: one tick claims at most this many queue rows.
ONBOARDING_BATCH = 200


def _now() -> pd.Timestamp:
    """The clock the sensor reads (tests pin it)."""
    return pd.Timestamp.now(tz="UTC")


def onboarding_dates(now: pd.Timestamp | None = None) -> tuple[dt.date, dt.date]:
    """[ONBOARDING_SESSIONS sessions back .. the latest completed session], within the partitions."""
    last = sessions.latest_completed_session(now if now is not None else _now())
    first = sessions.session_offset(last, -(ONBOARDING_SESSIONS - 1))
    first_partition = dt.date.fromisoformat(trading_date_partitions.get_first_partition_key())
    return max(first, first_partition), last


@dataclass
class OnboardingPlan:
    claimed: list[onboarding.QueueRow] = field(default_factory=list)
    new_keys: list[str] = field(default_factory=list)
    run_requests: list[dg.RunRequest] = field(default_factory=list)
    cursor: str | None = None


def plan_onboarding(
    engine: Engine,
    existing_keys: Sequence[str],
    cursor: str | None,
    *,
    now: pd.Timestamp | None = None,
    limit: int = ONBOARDING_BATCH,
    reclaim: bool = True,
) -> OnboardingPlan:
    """Claim queued symbols and say what to add to the `symbol` partition and which runs to launch.

    The new keys are appended to the dynamic partition together, so they form one block in its
    order and one partition range covers them: runs per batch, not per symbol. Each block gets
    two runs over disjoint dates: `latest` (the latest completed session, high priority) makes
    the symbols `active` with every beta in a few seconds, since its betas step settles them;
    `history` fills the sessions before it. One run over the whole window would make the user
    wait for ~190 sessions of betas and metrics, computed one date at a time. A claimed
    symbol already in the partition (registered by `symbol-pipeline run`, say) may sit elsewhere
    in the order; it gets a run of its own block.
    """
    last_id = int(cursor) if cursor else 0
    claimed = onboarding.claim_batch(engine, limit, reclaim_after_id=last_id if reclaim else None)
    plan = OnboardingPlan(claimed=claimed, cursor=cursor)
    if not claimed:
        return plan
    symbols = list(dict.fromkeys(row.symbol for row in claimed))
    existing = set(existing_keys)
    plan.new_keys = [s for s in symbols if s not in existing]
    order = [*existing_keys, *plan.new_keys]
    first_date, last_date = onboarding_dates(now)
    ids = sorted(row.id for row in claimed)
    id_tag = ",".join(str(i) for i in ids)[:4000]
    windows = [("latest", last_date, last_date, "10")]
    if first_date < last_date:
        windows.append(("history", first_date, sessions.previous_session(last_date), "0"))
    for first, last in contiguous_blocks(symbols, order):
        for part, d1, d2, priority in windows:
            plan.run_requests.append(
                dg.RunRequest(
                    run_key=f"onboarding:{ids[0]}-{ids[-1]}:{first}..{last}:{part}",
                    tags={
                        **range_tags(d1.isoformat(), d2.isoformat(), first, last),
                        RUN_KIND_TAG: ONBOARDING_RUN_KIND,
                        ONBOARDING_PART_TAG: part,
                        QUEUE_IDS_TAG: id_tag,
                        # The queued run coordinator launches higher priorities first.
                        "dagster/priority": priority,
                    },
                )
            )
    plan.cursor = str(max(last_id, ids[-1]))
    return plan


@dg.sensor(
    name="symbol_onboarding_sensor",
    job=symbol_layer_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Queued symbols: add them to the `symbol` partition and backfill their history window.",
)
def symbol_onboarding_sensor(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> dg.SensorResult | dg.SkipReason:
    """Cursor: the highest queue id whose run was requested by a tick Dagster stored.

    Claimed rows above it belong to a tick whose result was lost, and are claimed again.
    """
    plan = plan_onboarding(
        database.engine(), context.instance.get_dynamic_partitions(SYMBOL_DIMENSION), context.cursor
    )
    if not plan.claimed:
        return dg.SkipReason("no symbols waiting in the onboarding queue")
    context.log.info(
        f"onboarding {len(plan.claimed)} symbols ({len(plan.new_keys)} new keys) in {len(plan.run_requests)} run(s)"
    )
    return dg.SensorResult(
        run_requests=plan.run_requests,
        dynamic_partitions_requests=[symbol_partitions.build_add_request(plan.new_keys)] if plan.new_keys else [],
        cursor=plan.cursor,
    )


def symbols_of_run(instance: dg.DagsterInstance, tags: Mapping[str, str]) -> list[str]:
    """The symbol keys a run covered, from its partition range (or single partition) tags."""
    order = instance.get_dynamic_partitions(SYMBOL_DIMENSION)
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        first = tags[RANGE_START_TAG].split("|")[-1]
        last = tags[RANGE_END_TAG].split("|")[-1]
        if first in order and last in order:
            i, j = order.index(first), order.index(last)
            return list(order[min(i, j) : max(i, j) + 1])
        return []
    key = tags.get("dagster/partition")
    return [key.split("|")[-1]] if key and "|" in key else []


def refresh_portfolios(engine: Engine) -> dict[str, int] | None:
    """Invalidate the portfolio caches and recompute every portfolio's exposures, when the
    portfolio layer is installed (None when it is not)."""
    try:
        from symbol_pipeline.services import portfolios
    except ImportError:
        return None
    if not hasattr(portfolios, "invalidate_all_caches"):
        return None
    summary = {"cache_entries_dropped": int(portfolios.invalidate_all_caches(engine) or 0)}
    compute = getattr(portfolios, "compute_portfolio_exposures", None)
    if compute is not None:
        batch = compute(engine)
        summary["portfolios_refreshed"] = len(getattr(batch, "portfolio_ids", []) or [])
        summary["portfolio_errors"] = len(getattr(batch, "errors", {}) or {})
    return summary


def after_symbol_layer_success(engine: Engine, instance: dg.DagsterInstance, tags: Mapping[str, str]) -> dict:
    """Settle what the run left pending, then refresh the portfolios over the new betas.

    The betas step settles its own symbols; this catches a run whose betas were not selected
    (a UI materialisation of prices only) or that was retried from failure.
    """
    symbols = symbols_of_run(instance, tags)
    settled = universe.settle_pending(engine, symbols) if symbols else {}
    return {"symbols": len(symbols), "settled": settled, "portfolios": refresh_portfolios(engine)}


@dg.run_status_sensor(
    name="symbol_layer_success_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[symbol_layer_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a successful symbol-layer run: settle pending symbols, refresh portfolio exposures.",
)
def symbol_layer_success_sensor(context: dg.RunStatusSensorContext, database: DatabaseResource) -> None:
    outcome = after_symbol_layer_success(database.engine(), context.instance, context.dagster_run.tags)
    context.log.info(f"run {context.dagster_run.run_id}: {outcome}")


@dg.run_failure_sensor(
    name="run_failure_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records a pipeline_alerts row for every failed run and posts it to the alert webhook.",
)
def run_failure_sensor(context: dg.RunFailureSensorContext, database: DatabaseResource) -> None:
    from symbol_pipeline.storage.alerts import alert_run_failure

    run = context.dagster_run
    message = context.failure_event.message or "run failed"
    extra = {
        "tags": {k: v for k, v in run.tags.items() if k.startswith(("dagster/asset_partition", "dagster/partition", "symbol_pipeline/"))},
    }
    engine = database.engine()
    _, status = alert_run_failure(engine, run.run_id, run.job_name, message, get_settings().alert_webhook_url, extra)
    # A failed onboarding run leaves its symbols `error` with the reason, not `processing` forever.
    ids = [int(i) for i in run.tags.get(QUEUE_IDS_TAG, "").split(",") if i.strip().isdigit()]
    onboarding.fail_processing(engine, ids, f"onboarding run {run.run_id} failed: {message}"[:2000])
    context.log.info(f"alert recorded for run {run.run_id}" + (f"; webhook {status}" if status else ""))


SYMBOL_SENSORS = [symbol_onboarding_sensor, symbol_layer_success_sensor, run_failure_sensor]
