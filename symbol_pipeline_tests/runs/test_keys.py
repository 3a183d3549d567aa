"""How the project's partition keys and run tags are spelled, and read back: Dagster's spelling of
a date × symbol key, and the dates and symbols a run covered from its range or partition tags."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from symbol_pipeline.runs import keys

ORDER = ["AAA", "BBB", "CCC", "DDD"]  # the dynamic partition's keys in insertion order


def test_a_date_symbol_key_is_what_dagster_writes_and_splits_back():
    key = keys.date_symbol_key(dt.date(2024, 6, 28), "AAA")
    assert str(key) == "2024-06-28|AAA"  # dimensions joined in name order: date before symbol
    assert key == dg.MultiPartitionKey({"symbol": "AAA", "date": "2024-06-28"})
    assert keys.split_key(key) == ("2024-06-28", "AAA")
    assert keys.split_key(str(key)) == ("2024-06-28", "AAA")
    assert keys.split_key("2024-06-28|BRK.B") == ("2024-06-28", "BRK.B")


def test_the_date_of_a_date_key_or_of_a_date_symbol_key():
    assert keys.parse_date_key("2024-06-28") == dt.date(2024, 6, 28)
    assert keys.parse_date_key("2024-06-28|AAA") == dt.date(2024, 6, 28)
    with pytest.raises(ValueError):
        keys.parse_date_key("AAA")


def test_dates_and_symbols_are_distinct_and_sorted():
    found = keys.dates_and_symbols(["2024-06-28|BBB", "2024-06-27|AAA", "2024-06-28|AAA", "2024-06-27|BBB"])
    assert found == ([dt.date(2024, 6, 27), dt.date(2024, 6, 28)], ["AAA", "BBB"])
    assert keys.dates_and_symbols([]) == ([], [])


def test_range_tags_round_trip_to_the_symbols_and_dates_they_span():
    tags = keys.range_tags("2024-06-03", "2024-06-28", "BBB", "DDD")
    assert tags == {
        "dagster/asset_partition_range_start": "2024-06-03|BBB",
        "dagster/asset_partition_range_end": "2024-06-28|DDD",
    }
    assert keys.symbols_in_range(ORDER, tags) == ["BBB", "CCC", "DDD"]
    assert keys.dates_in_range(tags) == ("2024-06-03", "2024-06-28")


def test_a_range_over_symbols_no_longer_in_the_partition_covers_none():
    tags = keys.range_tags("2024-06-03", "2024-06-03", "BBB", "ZZZ")
    assert keys.symbols_in_range(ORDER, tags) == []


def test_a_range_is_read_in_the_partition_order_whichever_end_comes_first():
    tags = keys.range_tags("2024-06-03", "2024-06-03", "CCC", "AAA")
    assert keys.symbols_in_range(ORDER, tags) == ["AAA", "BBB", "CCC"]


def test_a_single_partition_run_covers_its_one_symbol_and_date():
    tags = {keys.PARTITION_TAG: "2024-06-28|CCC"}
    assert keys.symbols_in_range(ORDER, tags) == ["CCC"]
    assert keys.dates_in_range(tags) == ("2024-06-28", "2024-06-28")


def test_a_date_only_run_covers_dates_and_no_symbol():
    tags = keys.date_range_tags("2024-06-03", "2024-06-28")
    assert keys.dates_in_range(tags) == ("2024-06-03", "2024-06-28")
    assert keys.symbols_in_range(ORDER, {keys.PARTITION_TAG: "2024-06-28"}) == []
    assert keys.dates_in_range({keys.PARTITION_TAG: "2024-06-28"}) == ("2024-06-28", "2024-06-28")


def test_an_unpartitioned_run_covers_nothing():
    assert keys.symbols_in_range(ORDER, {}) == []
    assert keys.dates_in_range({}) is None


def test_symbol_blocks_are_the_contiguous_runs_of_the_partition_order():
    """Re-exported from lib.symbols: a run's range spans a contiguous block of the dynamic partition."""
    assert keys.contiguous_blocks(["AAA", "BBB", "DDD"], ORDER) == [("AAA", "BBB"), ("DDD", "DDD")]
