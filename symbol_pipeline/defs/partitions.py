"""Trading dates (NYSE sessions) × a dynamic `symbol` dimension."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from symbol_pipeline.config import get_settings
from symbol_pipeline.lib.sessions import EXCHANGE_TIMEZONE, last_known_session, non_session_weekdays

DATE_FORMAT = "%Y-%m-%d"
DATE_DIMENSION = "date"
SYMBOL_DIMENSION = "symbol"


def _holidays(start: str) -> list[dt.datetime]:
    # The calendar knows holidays about a year ahead; later ones appear as the package updates.
    return [dt.datetime(d.year, d.month, d.day) for d in non_session_weekdays(start, last_known_session())]


_start = get_settings().partitions_start

# end_offset=1: a weekday's partition window ends at the next weekday's midnight, so without
# it the schedule at 21:00 New York could not target the session that just closed.
trading_date_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 * * 1-5",
    start=_start,
    fmt=DATE_FORMAT,
    timezone=EXCHANGE_TIMEZONE,
    end_offset=1,
    exclusions=_holidays(_start),
)

symbol_partitions = dg.DynamicPartitionsDefinition(name=SYMBOL_DIMENSION)

symbol_date_partitions = dg.MultiPartitionsDefinition(
    {DATE_DIMENSION: trading_date_partitions, SYMBOL_DIMENSION: symbol_partitions}
)


def date_symbol_key(date: str, symbol: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DATE_DIMENSION: date, SYMBOL_DIMENSION: symbol})


def dates_and_symbols(partition_keys: list[str]) -> tuple[list[dt.date], list[str]]:
    """The distinct dates and symbols of a run's partition keys, sorted."""
    dates: set[str] = set()
    symbols: dict[str, None] = {}
    for key in partition_keys:
        # Multi-partition keys join dimensions in name order: "date|symbol".
        date, symbol = key.split("|")
        dates.add(date)
        symbols.setdefault(symbol, None)
    return [dt.date.fromisoformat(d) for d in sorted(dates)], sorted(symbols)
