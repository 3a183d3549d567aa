"""Starting runs on the instance: shared by the CLI, the sensors, the API and tests.

The one in-process execution path (`_execute`): `run` and `backfill` (run_symbol_layer) and
`onboard` (run_onboarding, over the run requests symbol_onboarding_sensor would make) all go
through it when no daemon serves the instance.

Runs go through the same instance as `dagster dev` in the repository, so they show in the UI.
The code location is passed in (`Definitions`), never imported here: the API process must not
build it.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.utils import make_new_run_id
from sqlalchemy.engine import Engine

from symbol_pipeline.runs.keys import (
    DAILY_RUN_KIND,
    HOST_TAG,
    ONBOARDING_PART_TAG,
    ONBOARDING_RUN_KIND,
    PID_TAG,
    PRIORITY_TAG,
    QUEUE_IDS_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    REQUEST_ID_TAG,
    RUN_KIND_TAG,
    SYMBOL_DIMENSION,
    contiguous_blocks,
    date_range_tags,
    range_tags,
)
from symbol_pipeline.services import onboarding

Progress = Callable[[str], None]

SYMBOL_LAYER_JOB = "symbol_layer_job"
FACTOR_RETURNS_JOB = "factor_returns_job"
PORTFOLIO_JOB = "portfolio_exposures_job"
PORTFOLIO_ASSETS = ("portfolio_factor_exposures", "portfolio_stress_tests")


def portfolio_run_config(portfolio_ids: Sequence[str]) -> dict:
    """The portfolio job's run config selecting these portfolios (empty: all) for both assets."""
    selection = {"config": {"portfolio_ids": list(portfolio_ids)}}
    return {"ops": {name: selection for name in PORTFOLIO_ASSETS}}


def register_symbols(instance: dg.DagsterInstance, symbols: Sequence[str]) -> list[str]:
    """Add symbols to the dynamic `symbol` partition; return the ones that were new."""
    existing = set(instance.get_dynamic_partitions(SYMBOL_DIMENSION))
    new = [s for s in dict.fromkeys(symbols) if s not in existing]
    if new:
        instance.add_dynamic_partitions(SYMBOL_DIMENSION, new)
    return new


@dataclass
class LaunchResult:
    run_ids: list[str]
    success: bool


def local_run_tags() -> dict[str, str]:
    """Tags of a run executed in this process: fail_orphaned_runs finds it if the process dies."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs this host executed in-process that are still STARTED but whose process is gone.

    A process killed with SIGKILL writes no failure event; without this its run stays STARTED forever.
    """
    host = socket.gethostname()
    failed = []
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])):
        pid = run.tags.get(PID_TAG, "")
        if run.tags.get(HOST_TAG) == host and pid.isdigit() and not _alive(int(pid)):
            instance.report_run_failed(run, f"the process that executed this run (pid {pid} on {host}) is gone")
            failed.append(run.run_id)
    return failed


def _execute(instance: dg.DagsterInstance, defs: dg.Definitions, job_name: str, tags: dict[str, str],
             run_config: dict | None, started: list[str]) -> bool:
    """One run in this process, its id appended to `started` before it starts (a follower thread
    reads its events), tagged so that fail_orphaned_runs finds it if the process dies."""
    run_id = make_new_run_id()
    started.append(run_id)
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance, tags={**tags, **local_run_tags()}, raise_on_error=False, run_id=run_id,
        **({"run_config": run_config} if run_config else {}),
    )
    return result.success


def symbol_blocks(instance: dg.DagsterInstance, symbols: Sequence[str] | None) -> list[tuple[str, str]]:
    """The (first, last) key ranges of the `symbol` partition a run over `symbols` covers: the whole
    partition for None, else one range per contiguous block of them in the partition's order."""
    order = instance.get_dynamic_partitions(SYMBOL_DIMENSION)
    if symbols is None:
        return [(order[0], order[-1])] if order else []
    return contiguous_blocks(symbols, order)


def run_symbol_layer(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    first_date: dt.date,
    last_date: dt.date,
    symbols: Sequence[str] | None,
    progress: Progress = lambda _: None,
    tags: dict[str, str] | None = None,
    run_config: dict | None = None,
    run_ids: list[str] | None = None,
) -> LaunchResult:
    """Materialise the symbol layer in-process for dates × symbols (None: every partition key).

    factor_returns runs first over the dates, then one run per contiguous block of symbols.
    Each run's id is appended to `run_ids` before it starts, so another thread can follow it.
    """
    started = [] if run_ids is None else run_ids
    d1, d2 = first_date.isoformat(), last_date.isoformat()
    extra = tags or {}
    progress(f"factor_returns {d1}..{d2}")
    if not _execute(instance, defs, FACTOR_RETURNS_JOB, {**date_range_tags(d1, d2), **extra}, run_config, started):
        return LaunchResult(list(started), False)
    for first, last in symbol_blocks(instance, symbols):
        progress(f"symbol layer {d1}..{d2} × symbols {first}..{last}")
        if not _execute(instance, defs, SYMBOL_LAYER_JOB, {**range_tags(d1, d2, first, last), **extra}, run_config,
                        started):
            return LaunchResult(list(started), False)
    return LaunchResult(list(started), True)


def onboarding_run_requests(plan: onboarding.OnboardingPlan) -> list[dg.RunRequest]:
    """The plan's runs as run requests over dates × a block of symbol keys: what
    symbol_onboarding_sensor asks of the daemon, and what `run_onboarding` executes without one."""
    id_tag = ",".join(str(i) for i in plan.queue_ids)[:4000]
    return [
        dg.RunRequest(
            run_key=run.run_key,
            tags={
                **range_tags(run.first_date.isoformat(), run.last_date.isoformat(), run.first_symbol, run.last_symbol),
                RUN_KIND_TAG: ONBOARDING_RUN_KIND,
                ONBOARDING_PART_TAG: run.part,
                QUEUE_IDS_TAG: id_tag,
                # The queued run coordinator launches higher priorities first.
                PRIORITY_TAG: str(run.priority),
            },
        )
        for run in plan.runs
    ]


def run_onboarding(
    engine: Engine,
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    plan: onboarding.OnboardingPlan,
    requests: Sequence[dg.RunRequest],
    recovery: onboarding.RecoveryPolicy,
    run_config: dict | None = None,
    run_ids: list[str] | None = None,
) -> LaunchResult:
    """An onboarding plan in this process, where no daemon serves the instance: what the daemon
    does with symbol_onboarding_sensor's result (the new keys, then each run request, all of them
    whatever one's outcome), then what symbol_layer_success_sensor does after them (the symbols
    left pending settle; the portfolios are refreshed when every run succeeded)."""
    started = [] if run_ids is None else run_ids
    register_symbols(instance, plan.new_keys)
    ok = True
    for request in requests:
        ok = _execute(instance, defs, request.job_name or SYMBOL_LAYER_JOB, dict(request.tags), run_config,
                      started) and ok
    onboarding.settle_pending(engine, [row.symbol for row in plan.claimed], recovery)
    if ok:
        run_portfolio_refresh(instance, defs, run_config=run_config)
    return LaunchResult(list(started), ok)


def run_portfolio_refresh(
    instance: dg.DagsterInstance, defs: dg.Definitions, portfolio_ids: Sequence[str] = (),
    run_config: dict | None = None,
) -> LaunchResult:
    """Run `portfolio_exposures_job` in-process for these portfolios (empty: all of them);
    `run_config` adds to the selection (the CLI's logger level)."""
    result = defs.resolve_job_def(PORTFOLIO_JOB).execute_in_process(
        instance=instance, run_config={**portfolio_run_config(portfolio_ids), **(run_config or {})},
        raise_on_error=False, tags=local_run_tags(),
    )
    return LaunchResult([result.run_id], result.success)


def _batch_counts(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict:
    """The counts a daily run recorded on its prices and market_beta materialisations.

    The run's summary is the metadata of its last event for each asset (defs/events.py), so it
    is among the asset's latest materialisations unless later runs wrote many since.
    """
    counts: dict = {}
    for asset, names in (("symbol_prices", ("symbols", "fetch_failures")),
                         ("market_beta", ("symbols_computed", "insufficient_data", "capped"))):
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=50, ascending=False).records
        for record in records:
            metadata = record.asset_materialization.metadata if record.asset_materialization else {}
            if record.run_id == run.run_id and metadata:
                counts.update({n: metadata[n].value for n in names if n in metadata})
                break
    return counts


def symbol_batch_status(instance: dg.DagsterInstance) -> dict:
    """The latest daily symbol-layer run (not onboarding nor backfill runs): status, times, range, counts."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=SYMBOL_LAYER_JOB, tags={RUN_KIND_TAG: DAILY_RUN_KIND}), limit=1
    )
    if not records:
        return {"status": "never_run"}
    record = records[0]
    run = record.dagster_run
    return {
        "status": run.status.value,
        "run_id": run.run_id,
        "request_id": run.tags.get(REQUEST_ID_TAG),
        "started": record.start_time,
        "ended": record.end_time,
        "range_start": run.tags.get(RANGE_START_TAG),
        "range_end": run.tags.get(RANGE_END_TAG),
        "counts": _batch_counts(instance, run),
    }

