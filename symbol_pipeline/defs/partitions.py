"""Trading dates (NYSE sessions) × a dynamic `symbol` dimension, built for a start date.

Built by functions, not at import: the start comes from the settings, which only the entry
points read (definitions.py).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from symbol_pipeline.lib.sessions import EXCHANGE_TIMEZONE, last_known_session, non_session_weekdays
from symbol_pipeline.runs.keys import DATE_DIMENSION, DATE_FORMAT, SYMBOL_DIMENSION

# The dynamic dimension holds no setting: every code location shares the same `symbol` keys.
symbol_partitions = dg.DynamicPartitionsDefinition(name=SYMBOL_DIMENSION)


def _holidays(start: str) -> list[dt.datetime]:
    # The calendar knows holidays about a year ahead; later ones appear as the package updates.
    return [dt.datetime(d.year, d.month, d.day) for d in non_session_weekdays(start, last_known_session())]


def trading_date_partitions(start: str) -> dg.TimeWindowPartitionsDefinition:
    """NYSE sessions from `start`, as weekday partitions with the exchange holidays excluded."""
    # end_offset=1: a weekday's partition window ends at the next weekday's midnight, so without
    # it the schedule at 21:00 New York could not target the session that just closed.
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * 1-5",
        start=start,
        fmt=DATE_FORMAT,
        timezone=EXCHANGE_TIMEZONE,
        end_offset=1,
        exclusions=_holidays(start),
    )


def symbol_date_partitions(dates: dg.TimeWindowPartitionsDefinition) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition({DATE_DIMENSION: dates, SYMBOL_DIMENSION: symbol_partitions})
