"""Dagster's PostgreSQL event log, with a batch insert that does not compile one row at a time.

`PostgresEventLogStorage.store_event_batch` inserts a batch of materialisations as one
`INSERT ... VALUES (...), (...), ...` statement built with `.values([row, ...])`: SQLAlchemy
compiles a bind parameter per column per row, so a batch of 1,000 events costs about 75 ms of
Python before PostgreSQL sees it, 19 % of a 10,000-symbol daily run (profiled with py-spy on
benchmarks/bench_operations.py). This subclass sends the same rows as an executemany of one
compiled statement (SQLAlchemy's insertmanyvalues, which psycopg2 receives as a few multi-row
INSERTs), with `RETURNING id` in parameter order, and then writes the asset-event tags and the
asset record from the batch's last event exactly as the parent does.

It also answers `DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS` as a property of the storage, like
runs/sqlite_events.py does for the quick start: a process that opens the production instance
without deploy/dagster.env still writes one planned event per asset and run. The other switch,
`DAGSTER_EVENT_BATCH_SIZE`, is an environment variable that the entry points set
(`config.apply_dagster_event_settings`, called by definitions.py and the CLI): this module writes
no environment.

Used by deploy/dagster.yaml (`event_log_storage`), the operations benchmark and the PostgreSQL
tests (`symbol_pipeline_tests/ops/test_event_retention.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqlEventLogStorageTable
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import pg_url_from_config

_BATCHED_TYPES = ({DagsterEventType.ASSET_MATERIALIZATION}, {DagsterEventType.ASSET_OBSERVATION})


class BatchingPostgresEventLogStorage(PostgresEventLogStorage):
    """PostgresEventLogStorage whose `store_event_batch` inserts a batch as one executemany."""

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]) -> BatchingPostgresEventLogStorage:  # type: ignore[override]
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
        )

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        # DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS, as a property of this storage.
        return True

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        types = {event.get_dagster_event().event_type for event in events}
        if types not in _BATCHED_TYPES:
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(event) for event in events]
        insert = SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True)
        with self._connect() as conn:
            event_ids = [int(row[0]) for row in conn.execute(insert, rows).fetchall()]
        if len(event_ids) != len(events):  # the parent raises on a missing id too
            raise RuntimeError(f"stored {len(event_ids)} of {len(events)} events")
        with self.index_transaction() as conn:
            self._store_asset_event_tags(conn, events, event_ids)
            self._store_asset_event(conn, events[-1], event_ids[-1])
