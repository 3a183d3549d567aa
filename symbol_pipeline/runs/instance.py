"""The project's Dagster instance, as `dagster dev` in the repository uses it.

`SymbolPipelineInstance` is Dagster's instance with one change, named in every dagster.yaml of the
project (`instance_class`): the identifier of the dynamic `symbol` dimension no longer hashes every
key. Dagster rebuilds an asset's partition-status cache from the event log whenever a reader's
partitions-definition identifier differs from the stored one; with the hash, adding one symbol
rebuilt all six symbol assets' caches on the next page load (issue 17: not ready in 600 s at a
year × 10,008 symbols). Additions cannot make a cached status wrong (a new key's partitions are
simply not in the materialised subset), so they keep the identifier. Deletions can (upstream RFC
dagster-io/dagster#29861: a key deleted, then added again, shows whatever the cache held), so a
deletion, and the re-addition of a deleted key, bump a generation stored in the instance's
key-value store, and the next reader rebuilds from the event log, as Dagster would.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.instance.ref import InstanceRef

SQLITE_EVENT_STORAGE = {"module": "symbol_pipeline.runs.sqlite_events", "class": "BatchingSqliteEventLogStorage"}
INSTANCE_CLASS = {"module": "symbol_pipeline.runs.instance", "class": "SymbolPipelineInstance"}
_GENERATION_KEY = "symbol_pipeline/dynamic_partitions_generation/{name}"
_DELETED_KEY = "symbol_pipeline/dynamic_partitions_deleted/{name}"


class SymbolPipelineInstance(dg.DagsterInstance):
    """A DagsterInstance whose dynamic-partition identifiers change on deletions, not additions."""

    @classmethod
    def config_schema(cls) -> Mapping[str, Any]:  # Dagster merges it into the instance schema
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, Any]:  # Dagster's own storage defaults
        return InstanceRef.config_defaults(base_dir)

    def _kvs(self, *keys: str) -> dict[str, str]:
        return dict(self.run_storage.get_cursor_values(set(keys)))

    def dynamic_partitions_generation(self, partitions_def_name: str) -> int:
        key = _GENERATION_KEY.format(name=partitions_def_name)
        return int(self._kvs(key).get(key, "0"))

    def get_dynamic_partitions_definition_id(self, partitions_def_name: str) -> str:
        generation = self.dynamic_partitions_generation(partitions_def_name)
        return hashlib.sha1(f"{partitions_def_name}:{generation}".encode()).hexdigest()

    def _bump(self, partitions_def_name: str, deleted: set[str]) -> None:
        name = partitions_def_name
        self.run_storage.set_cursor_values({
            _GENERATION_KEY.format(name=name): str(self.dynamic_partitions_generation(name) + 1),
            _DELETED_KEY.format(name=name): json.dumps(sorted(deleted)),
        })

    def _deleted(self, partitions_def_name: str) -> set[str]:
        key = _DELETED_KEY.format(name=partitions_def_name)
        return set(json.loads(self._kvs(key).get(key, "[]")))

    def add_dynamic_partitions(self, partitions_def_name: str, partition_keys: Sequence[str]) -> None:
        super().add_dynamic_partitions(partitions_def_name, partition_keys)
        deleted = self._deleted(partitions_def_name)
        if deleted & set(partition_keys):
            # A key that comes back: its status is whatever the event log says, not the cache.
            self._bump(partitions_def_name, deleted - set(partition_keys))

    def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> None:
        super().delete_dynamic_partition(partitions_def_name, partition_key)
        self._bump(partitions_def_name, self._deleted(partitions_def_name) | {partition_key})


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
    outside = {"python_logs": {"python_log_level": "INFO"}, "telemetry": {"enabled": False},
               "instance_class": INSTANCE_CLASS}
    overrides = {**sqlite_storage(base), **({} if config_dir else outside)}
    ref = InstanceRef.from_dir(str(base), config_dir=str(config_dir) if config_dir else None, overrides=overrides)
    return dg.DagsterInstance.from_ref(ref)
