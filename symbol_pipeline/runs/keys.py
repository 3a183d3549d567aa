"""The one place that knows how Dagster spells this project's partition keys and run tags.

A date × symbol key is `MultiPartitionKey({"date": D, "symbol": S})`, which Dagster writes as
"D|S" (dimensions joined in name order). A run covers dates × symbols through the range tags.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import dagster as dg

from symbol_pipeline.lib.symbols import contiguous_blocks

__all__ = ["contiguous_blocks"]  # re-exported: ranges over the dynamic partition are built here

DATE_FORMAT = "%Y-%m-%d"
DATE_DIMENSION = "date"
SYMBOL_DIMENSION = "symbol"

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
PRIORITY_TAG = "dagster/priority"

# What started a run, so that the status endpoint and the sensors can tell daily runs apart.
RUN_KIND_TAG = "symbol_pipeline/run_kind"
DAILY_RUN_KIND = "daily"
ONBOARDING_RUN_KIND = "onboarding"
BACKFILL_RUN_KIND = "backfill"
PORTFOLIO_RUN_KIND = "portfolio"
ONBOARDING_PART_TAG = "symbol_pipeline/onboarding_part"
QUEUE_IDS_TAG = "symbol_pipeline/onboarding_queue_ids"
# The pipeline_run_requests row a run serves, and which of its runs it is ("factor_returns", "symbols:0").
REQUEST_ID_TAG = "symbol_pipeline/request_id"
REQUEST_PART_TAG = "symbol_pipeline/request_part"
# Where an in-process run executes, so that a later CLI start can fail it once that process is gone.
PID_TAG = "symbol_pipeline/pid"
HOST_TAG = "symbol_pipeline/host"


def date_symbol_key(date: dt.date | str, symbol: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DATE_DIMENSION: str(date), SYMBOL_DIMENSION: symbol})


def split_key(key: str) -> tuple[str, str]:
    """(date, symbol) of a date × symbol key."""
    if isinstance(key, dg.MultiPartitionKey):
        return key.keys_by_dimension[DATE_DIMENSION], key.keys_by_dimension[SYMBOL_DIMENSION]
    date, _, symbol = str(key).partition("|")
    return date, symbol


def parse_date_key(key: str) -> dt.date:
    """The session of a date key ("2024-06-28") or of a date × symbol key."""
    return dt.date.fromisoformat(split_key(key)[0] if "|" in str(key) else str(key))


def dates_and_symbols(partition_keys: Iterable[str]) -> tuple[list[dt.date], list[str]]:
    """The distinct dates and symbols of a run's partition keys, sorted."""
    dates: set[str] = set()
    symbols: set[str] = set()
    for key in partition_keys:
        date, symbol = split_key(key)
        dates.add(date)
        symbols.add(symbol)
    return [dt.date.fromisoformat(d) for d in sorted(dates)], sorted(symbols)


def range_tags(first_date: str, last_date: str, first_symbol: str, last_symbol: str) -> dict[str, str]:
    """Tags that make one run cover dates × the symbols between two keys of the dynamic partition.

    build_schedule_from_partitioned_job would make one run per symbol (docs/architecture.md).
    """
    return {
        RANGE_START_TAG: str(date_symbol_key(first_date, first_symbol)),
        RANGE_END_TAG: str(date_symbol_key(last_date, last_symbol)),
    }


def date_range_tags(first_date: str, last_date: str) -> dict[str, str]:
    """Tags of a run over a range of the date-only partitions (factor_returns)."""
    return {RANGE_START_TAG: first_date, RANGE_END_TAG: last_date}


def symbols_in_range(order: Sequence[str], tags: Mapping[str, str]) -> list[str]:
    """The symbol keys a run covered, from its range tags (or single partition tag).

    `order` is the dynamic partition's keys in insertion order, which is what a range spans.
    """
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        first = split_key(tags[RANGE_START_TAG])[1]
        last = split_key(tags[RANGE_END_TAG])[1]
        if first in order and last in order:
            i, j = order.index(first), order.index(last)
            return list(order[min(i, j) : max(i, j) + 1])
        return []
    key = tags.get(PARTITION_TAG)
    return [split_key(key)[1]] if key and "|" in key else []


def dates_in_range(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """(first, last) date of a run's range or single partition tags."""
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return split_key(tags[RANGE_START_TAG])[0], split_key(tags[RANGE_END_TAG])[0]
    key = tags.get(PARTITION_TAG)
    if key:
        date = split_key(key)[0]
        return date, date
    return None
