"""Dagster's SQLite event log, with the batch write that its PostgreSQL storage already has.

Dagster OSS writes one event per partition materialisation. With `DAGSTER_EVENT_BATCH_SIZE` the
instance hands a run's events to the storage in batches, but SqliteEventLogStorage stores a batch
one event at a time: two SQLite databases opened, written and committed per event, about 19 ms
each on this machine, which made a 358-symbol quick start spend 40 of its 50 s writing 2,149
events. This subclass stores a batch of materialisations (or observations) in two transactions,
one per database, with the same rows the one-by-one path writes: the event rows in the run's
shard and in the index shard, the index's asset-event tags, and the asset record from the
batch's last event, as dagster-postgres does (`PostgresEventLogStorage.store_event_batch`).

The quick-start instance uses it through `dagster.yaml` and `runs.instance.get_instance`, so it
also answers `DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS` (docs/architecture.md) as a property
in every process that opens that instance, `dagster dev`'s webserver and daemon included, where
nothing sets it: one planned event per asset and run instead of one per partition. A step's
partition events are handed over in batches by `DAGSTER_EVENT_BATCH_SIZE`, which the entry points
set (`config.apply_dagster_event_settings`: definitions.py, which every run worker imports, and the
CLI); this module writes no environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

_BATCHED_TYPES = ({DagsterEventType.ASSET_MATERIALIZATION}, {DagsterEventType.ASSET_OBSERVATION})


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose `store_event_batch` writes a batch in one transaction per shard."""

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> BatchingSqliteEventLogStorage:  # type: ignore[override]
        return cls(inst_data=inst_data, **config_value)

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        # DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS, as a property of this storage.
        return True

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        types = {event.get_dagster_event().event_type for event in events}
        run_ids = {event.run_id for event in events}
        if types not in _BATCHED_TYPES or len(run_ids) != 1:
            super().store_event_batch(events)  # one at a time, as Dagster does
            return
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(next(iter(run_ids))) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            returning = SqlEventLogStorageTable.insert().returning(
                SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
            )
            result = conn.execute(returning, rows)
            event_ids = [int(row[0]) for row in result.fetchall()]
            if len(event_ids) != len(events):  # the one-by-one path raises on a missing id too
                raise RuntimeError(f"stored {len(event_ids)} of {len(events)} events in the index shard")
            self._store_asset_event_tags(conn, events, event_ids)
            self._store_asset_event(conn, events[-1], event_ids[-1])
