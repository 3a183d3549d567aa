"""Materialisation events for exactly the date × symbol partitions that hold data.

A `MaterializeResult` of a run over a range marks every partition of the range materialised,
whatever the step stored, and stamps each event with the whole run's metadata and a data
version whose provenance enumerates every upstream partition of the windows (2,400 bytes an
event, docs/architecture.md). The symbol-layer step instead records, per asset, the partitions that
the database now holds a row for (storage.coverage), and puts the run's summary metadata on the
last event only, which is the one the UI shows as the latest materialisation.

Dagster OSS writes one event per partition (range events are open requests, dagster-io/dagster
issues 31694 and 19829), and a user `AssetMaterialization` yielded by a step costs, per event, a
Python log record through every logger, a signal-handler swap around the generator, a copy in
the run's result and about 1,300 bytes of JSON (logging tags, two step handles, the message
twice). At 10,000 symbols that is 60,000 events a day. So this module writes the step's events
to the instance itself, in batches (the instance's DAGSTER_EVENT_BATCH_SIZE buffer), each
carrying only what the event log's readers use: the run, the step key, the asset key, the
partition and, on the last one, the metadata. The rows are the ones Dagster's own output
handling writes, minus the logging tags, the step handles and the message; the run's event
stream, the partition status and the asset's latest materialisation read them as usual.

It is the one place that builds Dagster's internal events. Every private Dagster API the project
uses, this module's among them, is listed with why in docs/architecture.md; dagster is pinned to
one release in pyproject.toml, and `symbol_pipeline_tests/ops/test_partition_status.py` checks
the statuses through the instance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.events import (
    DagsterEvent,
    DagsterEventBatchMetadata,
    DagsterEventType,
    StepMaterializationData,
    generate_event_batch_id,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.tags import BACKFILL_ID_TAG

_MATERIALIZATION = DagsterEventType.ASSET_MATERIALIZATION.value


def record_partitions(
    context: dg.AssetExecutionContext,
    asset_key: str,
    pairs: Iterable[tuple[str, str]],
    metadata: Mapping[str, Any],
) -> int:
    """Record a materialisation per (date, symbol) of `pairs`, sorted, `metadata` on the last one;
    the number recorded."""
    # Dagster spells a date × symbol key "date|symbol" (dimensions in name order, runs.keys): a
    # plain string here saves building 60,000 MultiPartitionKey objects a day.
    keys = [f"{date}|{symbol}" for date, symbol in sorted(set(pairs))]
    return record_keys(context, asset_key, keys, metadata)


def record_keys(
    context: dg.AssetExecutionContext,
    asset_key: str,
    keys: Sequence[str],
    metadata: Mapping[str, Any],
) -> int:
    """Record a materialisation per partition key, in one batch, `metadata` on the last one."""
    if not keys:
        return 0
    step = context.get_step_execution_context()
    backfill = step.get_tag(BACKFILL_ID_TAG)
    return write_keys(
        step.instance, step.run_id, step.job_name, step.step.key, asset_key, keys, metadata,
        tags={BACKFILL_ID_TAG: backfill} if backfill else None,
    )


def write_keys(
    instance: dg.DagsterInstance,
    run_id: str,
    job_name: str,
    step_key: str,
    asset_key: str,
    keys: Sequence[str],
    metadata: Mapping[str, Any] | None,
    tags: Mapping[str, str] | None = None,
) -> int:
    """The events of `record_keys` for a step of run `run_id`; also used by
    benchmarks/bench_year.py's `--fast` history, which writes them for runs it records itself."""
    key = dg.AssetKey(asset_key)
    batch_id = generate_event_batch_id()
    last = len(keys) - 1
    for i, partition in enumerate(keys):
        # No per-dimension tags (`dagster/partition/date`, `.../symbol`): the status reads the
        # event's partition column, and the tags cost two rows of asset_event_tags per event.
        materialization = dg.AssetMaterialization(
            asset_key=key, partition=partition, metadata=metadata if i == last else None, tags=tags,
        )
        event = DagsterEvent(
            event_type_value=_MATERIALIZATION,
            job_name=job_name,
            step_key=step_key,
            step_kind_value="COMPUTE",
            event_specific_data=StepMaterializationData(materialization),
        )
        entry = EventLogEntry(
            error_info=None, level=logging.DEBUG, user_message="", run_id=run_id,
            timestamp=time.time(), step_key=step_key, job_name=job_name, dagster_event=event,
        )
        instance.handle_new_event(entry, batch_metadata=DagsterEventBatchMetadata(batch_id, i == last))
    return len(keys)
