"""Sensors: symbol onboarding, run failures, and what follows a successful symbol-layer run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import dagster as dg
import pandas as pd
from sqlalchemy.engine import Engine

from symbol_pipeline.defs.partitions import symbol_partitions
from symbol_pipeline.defs.portfolios.jobs import portfolio_exposures_job
from symbol_pipeline.defs.resources import AlertWebhookResource, DatabaseResource
from symbol_pipeline.defs.symbols.jobs import symbol_layer_job
from symbol_pipeline.runs.keys import (
    ONBOARDING_RUN_KIND,
    QUEUE_IDS_TAG,
    RUN_KIND_TAG,
    SYMBOL_DIMENSION,
    symbols_in_range,
)

# onboarding_run_requests: the run requests of a plan, shared with `symbol-pipeline onboard`.
from symbol_pipeline.runs.submit import PORTFOLIO_JOB, onboarding_run_requests, portfolio_run_config
from symbol_pipeline.services import onboarding, portfolio, window
from symbol_pipeline.storage import onboarding as queue
from symbol_pipeline.storage.alerts import record_alert, set_webhook_status


def _now() -> pd.Timestamp:
    """The clock the sensor reads (tests pin it)."""
    return pd.Timestamp.now(tz="UTC")


def portfolios_to_refresh(engine: Engine, instance: dg.DagsterInstance, tags: Mapping[str, str]) -> list[str] | None:
    """The portfolios whose inputs a successful symbol-layer run changed: None means all of them.

    An onboarding run only adds betas of new symbols, so only the portfolios holding them
    change; any other run (daily, backfill, UI) may rewrite betas every portfolio reads.
    Caches of what changed are dropped here, so that nothing stale is served until the run ends.
    """
    if tags.get(RUN_KIND_TAG) != ONBOARDING_RUN_KIND:
        portfolio.invalidate_all_caches(engine)
        return None
    symbols = symbols_in_range(instance.get_dynamic_partitions(SYMBOL_DIMENSION), tags)
    holders = portfolio.portfolios_holding(engine, symbols)
    for pid in holders:
        portfolio.invalidate_portfolio_cache(engine, pid)
    return holders


def refresh_request(run_id: str, portfolio_ids: list[str] | None) -> dg.RunRequest:
    """A run of portfolio_exposures_job (exposures, then stress tests) over `portfolio_ids` (None: all)."""
    return dg.RunRequest(
        run_key=f"portfolio-refresh-after-{run_id}",
        job_name=PORTFOLIO_JOB,
        run_config=portfolio_run_config(portfolio_ids or []),
        tags={
            "symbol_pipeline/after_run": run_id,
            "symbol_pipeline/portfolios": "all" if portfolio_ids is None else str(len(portfolio_ids)),
            # Re-executed by the daemon when a run fails (run_retries in deploy/dagster.yaml).
            "dagster/max_retries": "2",
        },
    )


def build_symbol_sensors(
    first_partition: dt.date, recovery: onboarding.RecoveryPolicy = onboarding.DEFAULT_RECOVERY
) -> list[dg.SensorDefinition]:
    """The onboarding, success and failure sensors; onboarding runs start no earlier than `first_partition`."""

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
        engine = database.engine()
        # Never before the stored window's first date: after a move, this code server may still
        # hold the earlier one until its reload, and a run worker (which loads the moved window)
        # would fail a run over a date the move dropped.
        stored = window.stored_first_date(engine)
        plan = onboarding.plan_onboarding(
            engine, context.instance.get_dynamic_partitions(SYMBOL_DIMENSION), context.cursor,
            now=_now(), first_partition=max(first_partition, stored or first_partition),
        )
        if not plan.claimed:
            return dg.SkipReason("no symbols waiting in the onboarding queue")
        context.log.info(
            f"onboarding {len(plan.claimed)} symbols ({len(plan.new_keys)} new keys) in {len(plan.runs)} run(s)"
        )
        return dg.SensorResult(
            run_requests=onboarding_run_requests(plan),
            dynamic_partitions_requests=[symbol_partitions.build_add_request(plan.new_keys)] if plan.new_keys else [],
            cursor=plan.cursor,
        )

    @dg.run_status_sensor(
        name="symbol_layer_success_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[symbol_layer_job],
        request_job=portfolio_exposures_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After a successful symbol-layer run: settle pending symbols, refresh portfolio exposures.",
    )
    def symbol_layer_success_sensor(
        context: dg.RunStatusSensorContext, database: DatabaseResource
    ) -> dg.RunRequest | dg.SkipReason:
        """Settle what the run left pending, then request the portfolio refresh over the new betas.

        The betas step settles its own symbols; this catches a run whose betas were not selected
        (a UI materialisation of prices only) or that was retried from failure.
        """
        engine, run = database.engine(), context.dagster_run
        symbols = symbols_in_range(context.instance.get_dynamic_partitions(SYMBOL_DIMENSION), run.tags)
        settled = onboarding.settle_pending(engine, symbols, recovery) if symbols else {}
        targets = portfolios_to_refresh(engine, context.instance, run.tags)
        context.log.info(f"run {run.run_id}: {len(symbols)} symbols, settled {settled}")
        if targets == []:
            return dg.SkipReason(f"run {run.run_id} changed no portfolio's inputs")
        return refresh_request(run.run_id, targets)

    @dg.run_failure_sensor(
        name="run_failure_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records a pipeline_alerts row for every failed run and posts it to the alert webhook.",
    )
    def run_failure_sensor(
        context: dg.RunFailureSensorContext, database: DatabaseResource, alert_webhook: AlertWebhookResource
    ) -> None:
        run = context.dagster_run
        message = context.failure_event.message or "run failed"
        tags = {
            k: v for k, v in run.tags.items()
            if k.startswith(("dagster/asset_partition", "dagster/partition", "symbol_pipeline/"))
        }
        engine = database.engine()
        # Recorded first: the row is the alert, whatever happens to the post.
        alert_id = record_alert(engine, run.run_id, run.job_name, message)
        status = alert_webhook.post(
            {"event": "run_failure", "run_id": run.run_id, "job_name": run.job_name, "message": message, "tags": tags}
        )
        if status is not None:
            set_webhook_status(engine, alert_id, status)
        # A failed onboarding run leaves its symbols `error` with the reason, not `processing` forever.
        ids = [int(i) for i in run.tags.get(QUEUE_IDS_TAG, "").split(",") if i.strip().isdigit()]
        queue.fail_processing(engine, ids, f"onboarding run {run.run_id} failed: {message}"[:2000])
        context.log.info(f"alert recorded for run {run.run_id}" + (f"; webhook {status}" if status else ""))

    return [symbol_onboarding_sensor, symbol_layer_success_sensor, run_failure_sensor]
