"""Materialisation events for exactly the date × symbol partitions that hold data.

A `MaterializeResult` of a run over a range marks every partition of the range materialised,
whatever the step stored, and stamps each event with the whole run's metadata and a data
version whose provenance enumerates every upstream partition of the windows (2,400 bytes an
event, REFERENCE.md §3). The symbol-layer step instead reports, per asset, the partitions that
the database now holds a row for (storage.coverage), in one batch of events written together
(the instance's DAGSTER_EVENT_BATCH_SIZE), and puts the run's summary metadata on the last event
only, which is the one the UI shows as the latest materialisation.

Dagster has no public way to batch events yielded by a step (user `AssetMaterialization`s are
stored one by one; range events are open requests, dagster-io/dagster issues 31694 and 19829), so
this module builds the step's events the way Dagster's own output handling does
(`execute_step._store_output`). It is the one place that touches that internal API; dagster is
pinned to one release in pyproject.toml and `symbol_pipeline_tests/defs/test_events.py` checks
the statuses through the instance.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventBatchMetadata, generate_event_batch_id
from dagster._core.storage.tags import BACKFILL_ID_TAG

from symbol_pipeline.runs.keys import date_symbol_key


def partition_materializations(
    context: dg.AssetExecutionContext,
    asset_key: str,
    pairs: Iterable[tuple[str, str]],
    metadata: Mapping[str, Any],
) -> Iterator[DagsterEvent]:
    """One materialisation per (date, symbol) of `pairs`, sorted, `metadata` on the last one."""
    keys = [date_symbol_key(date, symbol) for date, symbol in sorted(set(pairs))]
    yield from keyed_materializations(context, asset_key, keys, metadata)


def keyed_materializations(
    context: dg.AssetExecutionContext,
    asset_key: str,
    keys: Sequence[str],
    metadata: Mapping[str, Any],
) -> Iterator[DagsterEvent]:
    """One materialisation per partition key, in one batch, `metadata` on the last one."""
    if not keys:
        return
    step = context.get_step_execution_context()
    backfill = step.get_tag(BACKFILL_ID_TAG)
    run_tags = {BACKFILL_ID_TAG: backfill} if backfill else {}
    batch_id = generate_event_batch_id()
    last = len(keys) - 1
    for i, key in enumerate(keys):
        # No per-dimension tags (`dagster/partition/date`, `.../symbol`): the status reads the
        # event's partition column, and the tags cost two rows of asset_event_tags per event.
        materialization = dg.AssetMaterialization(
            asset_key=asset_key, partition=key, metadata=metadata if i == last else None, tags=run_tags or None,
        )
        yield DagsterEvent.asset_materialization(step, materialization, DagsterEventBatchMetadata(batch_id, i == last))
