"""The materialisation events a step writes itself: one per date × symbol partition it names, in
order, the run's metadata on the last one only, read back by the instance as Dagster's own."""

from __future__ import annotations

import dagster as dg

from symbol_pipeline.defs import events

PAIRS = [("2024-06-28", "BBB"), ("2024-06-27", "AAA"), ("2024-06-28", "AAA"), ("2024-06-28", "BBB")]
EXPECTED = ["2024-06-27|AAA", "2024-06-28|AAA", "2024-06-28|BBB"]  # distinct, sorted by date then symbol


def _step(pairs, metadata=None):
    """An asset whose step records `pairs` for `symbol_prices` and reports how many it recorded."""

    @dg.asset
    def step(context) -> dg.MaterializeResult:  # no annotation: this module postpones them
        recorded = events.record_partitions(context, "symbol_prices", pairs, metadata or {"rows": 3})
        return dg.MaterializeResult(metadata={"recorded": recorded})

    return step


def _records(instance: dg.DagsterInstance) -> list:
    found = instance.fetch_materializations(dg.AssetKey("symbol_prices"), limit=100).records
    return sorted(found, key=lambda r: r.storage_id)


def _recorded(result: dg.ExecuteInProcessResult) -> int:
    [own] = result.asset_materializations_for_node("step")
    return own.metadata["recorded"].value


def test_one_event_per_distinct_partition_in_order_metadata_on_the_last(instance):
    result = dg.materialize([_step(PAIRS)], instance=instance)
    assert result.success
    assert _recorded(result) == 3
    records = _records(instance)
    assert [r.asset_materialization.partition for r in records] == EXPECTED
    assert [dict(r.asset_materialization.metadata) for r in records[:-1]] == [{}, {}]
    assert records[-1].asset_materialization.metadata["rows"].value == 3
    assert {r.run_id for r in records} == {result.run_id}
    assert {r.event_log_entry.step_key for r in records} == {"step"}
    assert instance.get_materialized_partitions(dg.AssetKey("symbol_prices")) == set(EXPECTED)


def test_no_pairs_record_nothing(instance):
    result = dg.materialize([_step([])], instance=instance)
    assert result.success
    assert _recorded(result) == 0
    assert _records(instance) == []


def test_a_backfill_run_tags_its_events_with_the_backfill(instance):
    result = dg.materialize([_step(PAIRS[:1])], instance=instance, tags={"dagster/backfill": "bf-1"})
    [record] = _records(instance)
    assert result.success and record.asset_materialization.tags == {"dagster/backfill": "bf-1"}


def test_events_written_for_a_run_are_read_back_as_its_materialisations(instance):
    """write_keys, as benchmarks/bench_year.py uses it for runs it records itself."""
    written = events.write_keys(instance, "run-1", "__ASSET_JOB", "symbol_prices", "symbol_prices",
                                ["2024-06-27|AAA", "2024-06-28|AAA"], {"rows": 2})
    assert written == 2
    records = _records(instance)
    assert [(r.run_id, r.asset_materialization.partition) for r in records] == [
        ("run-1", "2024-06-27|AAA"), ("run-1", "2024-06-28|AAA"),
    ]
    assert records[-1].asset_materialization.metadata["rows"].value == 2
