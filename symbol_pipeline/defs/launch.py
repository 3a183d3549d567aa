"""Launching symbol-layer runs on the project's Dagster instance: shared by the CLI, the API and tests.

Runs go through the same instance as `dagster dev` in the repository, so they show in the UI.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from symbol_pipeline.config import get_settings
from symbol_pipeline.defs.partitions import SYMBOL_DIMENSION
from symbol_pipeline.defs.symbols.jobs import range_tags
from symbol_pipeline.lib.factors import REGRESSOR_ETFS

Progress = Callable[[str], None]


def get_instance() -> dg.DagsterInstance:
    """DAGSTER_HOME when set; else the repository's dagster.yaml (as `dagster dev` uses it)."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    from dagster._core.instance.ref import InstanceRef

    config_dir = Path.cwd() if (Path.cwd() / "dagster.yaml").exists() else None
    base = get_settings().data_dir / "dagster"
    base.mkdir(parents=True, exist_ok=True)
    ref = InstanceRef.from_dir(str(base), config_dir=str(config_dir) if config_dir else None)
    return dg.DagsterInstance.from_ref(ref)


def register_symbols(instance: dg.DagsterInstance, symbols: Sequence[str]) -> list[str]:
    """Add symbols to the dynamic `symbol` partition; return the ones that were new."""
    existing = set(instance.get_dynamic_partitions(SYMBOL_DIMENSION))
    new = [s for s in dict.fromkeys(symbols) if s not in existing]
    if new:
        instance.add_dynamic_partitions(SYMBOL_DIMENSION, new)
    return new


def contiguous_blocks(symbols: Sequence[str], order: Sequence[str]) -> list[tuple[str, str]]:
    """(first, last) pairs of runs of `symbols` that are adjacent in the dynamic partition's order.

    A partition range covers every key between its ends, so a subset of symbols needs one
    range per block of neighbours.
    """
    wanted = set(symbols)
    blocks: list[tuple[str, str]] = []
    start: str | None = None
    previous: str | None = None
    for key in order:
        if key in wanted:
            start = start or key
            previous = key
        elif start is not None:
            blocks.append((start, previous))
            start = None
    if start is not None:
        blocks.append((start, previous))
    return blocks


@dataclass
class LaunchResult:
    run_ids: list[str]
    success: bool


def run_symbol_layer(
    instance: dg.DagsterInstance,
    first_date: dt.date,
    last_date: dt.date,
    symbols: Sequence[str] | None,
    progress: Progress = lambda _: None,
) -> LaunchResult:
    """Materialise the symbol layer in-process for dates × symbols (None: every partition key).

    factor_returns runs first over the dates, then one run per contiguous block of symbols.
    """
    from symbol_pipeline.definitions import build_definitions

    # Built per call so that a run uses the environment of the moment (tests, CLI flags).
    defs = build_definitions()
    run_ids: list[str] = []
    d1, d2 = first_date.isoformat(), last_date.isoformat()
    etf_job = defs.resolve_job_def("factor_returns_job")
    tags = {"dagster/asset_partition_range_start": d1, "dagster/asset_partition_range_end": d2}
    progress(f"factor_returns {d1}..{d2}")
    result = etf_job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    run_ids.append(result.run_id)
    if not result.success:
        return LaunchResult(run_ids, False)
    order = instance.get_dynamic_partitions(SYMBOL_DIMENSION)
    blocks = [(order[0], order[-1])] if symbols is None and order else contiguous_blocks(symbols or [], order)
    job = defs.resolve_job_def("symbol_layer_job")
    for first, last in blocks:
        progress(f"symbol layer {d1}..{d2} × symbols {first}..{last}")
        result = job.execute_in_process(
            instance=instance, tags=range_tags(d1, d2, first, last), raise_on_error=False
        )
        run_ids.append(result.run_id)
        if not result.success:
            return LaunchResult(run_ids, False)
    return LaunchResult(run_ids, True)


def run_symbols_with_etfs(symbols: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*symbols, *REGRESSOR_ETFS]))


def launch_symbol_batch(date: dt.date | str | None = None) -> dict:
    """Start `symbol-pipeline run` for `date` in a detached process and return at once.

    The HTTP API calls this; the run registers itself on the Dagster instance, so
    symbol_batch_status() and the UI both follow it.
    """
    import subprocess
    import sys

    from symbol_pipeline.lib import sessions

    day = sessions.latest_completed_session() if date is None else dt.date.fromisoformat(str(date))
    sessions.require_session(day)
    log_dir = get_settings().data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"symbol-batch-{day.isoformat()}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "symbol_pipeline.cli", "run", "--date", day.isoformat()],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    return {"status": "launched", "date": day.isoformat(), "pid": process.pid, "log": str(log_path)}


def symbol_batch_status() -> dict:
    """The latest symbol-layer run on the instance: id, status, times and partition range."""
    with get_instance() as instance:
        records = instance.get_run_records(filters=dg.RunsFilter(job_name="symbol_layer_job"), limit=1)
        if not records:
            return {"status": "never_run"}
        record = records[0]
        run = record.dagster_run
        return {
            "status": run.status.value,
            "run_id": run.run_id,
            "started": record.start_time,
            "ended": record.end_time,
            "range_start": run.tags.get("dagster/asset_partition_range_start"),
            "range_end": run.tags.get("dagster/asset_partition_range_end"),
        }
