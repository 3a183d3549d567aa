"""Trading dates (NYSE sessions) × a dynamic `symbol` dimension, built for a start date.

Built by functions, not at import: the start comes from the settings, which only the entry
points read (definitions.py).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from symbol_pipeline.lib.sessions import EXCHANGE_TIMEZONE, REGULAR_CLOSE, exclusion_horizon, non_session_weekdays
from symbol_pipeline.runs.keys import DATE_DIMENSION, DATE_FORMAT, SYMBOL_DIMENSION

# The dynamic dimension holds no setting: every code location shares the same `symbol` keys.
symbol_partitions = dg.DynamicPartitionsDefinition(name=SYMBOL_DIMENSION)


def _holidays(start: str) -> list[dt.datetime]:
    # Up to a horizon that depends on `start` alone, never on the day this process started: the
    # exclusions are part of the definition's identifier, which every process must share.
    # At the partitions' tick time: Dagster excludes a tick whose timestamp equals the datetime.
    return [dt.datetime.combine(d, REGULAR_CLOSE) for d in non_session_weekdays(start, exclusion_horizon(start))]


def trading_date_partitions(start: str) -> dg.TimeWindowPartitionsDefinition:
    """NYSE sessions from `start`, as weekday partitions with the exchange holidays excluded."""
    # A session's window opens at its regular close (16:00 New York) and end_offset=1 makes the
    # window that opened last a partition: session D exists from 16:00 on D, when
    # lib.sessions.latest_completed_session turns to D, so the 21:00 schedule can target it and
    # the UI never shows the session still trading as a missing partition. (At midnight ticks
    # with end_offset=1, D existed all day, missing until the evening run.) One edge remains: on a
    # holiday's evening the excluded tick closes the window before it, so the next session shows
    # from 16:00 of the holiday, a day early (at midnight ticks it was a day and a half early).
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=f"{REGULAR_CLOSE.minute} {REGULAR_CLOSE.hour} * * 1-5",
        start=start,
        fmt=DATE_FORMAT,
        timezone=EXCHANGE_TIMEZONE,
        end_offset=1,
        exclusions=_holidays(start),
    )


def symbol_date_partitions(dates: dg.TimeWindowPartitionsDefinition) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition({DATE_DIMENSION: dates, SYMBOL_DIMENSION: symbol_partitions})
