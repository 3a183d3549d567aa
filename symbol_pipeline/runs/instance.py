"""The project's Dagster instance, as `dagster dev` in the repository uses it."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef


def get_instance(data_dir: Path) -> dg.DagsterInstance:
    """DAGSTER_HOME when set; else the repository's dagster.yaml with storage under `data_dir`."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    config_dir = Path.cwd() if (Path.cwd() / "dagster.yaml").exists() else None
    base = Path(data_dir) / "dagster"
    base.mkdir(parents=True, exist_ok=True)
    ref = InstanceRef.from_dir(str(base), config_dir=str(config_dir) if config_dir else None)
    return dg.DagsterInstance.from_ref(ref)
