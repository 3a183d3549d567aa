"""The project's Dagster instance, as `dagster dev` in the repository uses it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.instance.ref import InstanceRef

SQLITE_EVENT_STORAGE = {"module": "symbol_pipeline.runs.sqlite_events", "class": "BatchingSqliteEventLogStorage"}


def sqlite_storage(base: Path) -> dict[str, Any]:
    """The SQLite storages under `base`, in the layout of Dagster's own `storage: sqlite`, with
    the event log that writes batches in one transaction (runs/sqlite_events.py)."""
    return {
        "run_storage": {"module": "dagster._core.storage.runs", "class": "SqliteRunStorage",
                        "config": {"base_dir": str(base / "history")}},
        "event_log_storage": {**SQLITE_EVENT_STORAGE, "config": {"base_dir": str(base / "history" / "runs")}},
        "schedule_storage": {"module": "dagster._core.storage.schedules", "class": "SqliteScheduleStorage",
                             "config": {"base_dir": str(base / "schedules")}},
    }


def get_instance(data_dir: Path) -> dg.DagsterInstance:
    """DAGSTER_HOME when set; else SQLite storage under `data_dir`/dagster, with the rest of the
    configuration (run coordinator, telemetry) from the repository's dagster.yaml when it is here."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    config_dir = Path.cwd() if (Path.cwd() / "dagster.yaml").exists() else None
    base = Path(data_dir).resolve() / "dagster"
    base.mkdir(parents=True, exist_ok=True)
    # Without the repository's dagster.yaml, two of its settings still hold: runs without a logger
    # in their run config print at INFO, not one DEBUG line per partition event, and no telemetry
    # (whose first use prints a 15-line notice into the run's console).
    outside = {"python_logs": {"python_log_level": "INFO"}, "telemetry": {"enabled": False}}
    overrides = {**sqlite_storage(base), **({} if config_dir else outside)}
    ref = InstanceRef.from_dir(str(base), config_dir=str(config_dir) if config_dir else None, overrides=overrides)
    return dg.DagsterInstance.from_ref(ref)
