"""Which dates the symbol layer may run for: the one rule the CLI and the admin API apply.

Light on purpose (the calendar and nothing of Dagster): the CLI checks its dates with it before it
imports the definitions, so that a bad date is a one-line error in about a second.
"""

from __future__ import annotations

import datetime as dt

from symbol_pipeline.lib import sessions


class InvalidRunDateError(ValueError):
    """A date the symbol layer cannot run for; the message names the rule."""


def check_run_date(day: dt.date, first_partition: dt.date | str, what: str = "date",
                   how_to_include: str = "") -> dt.date:
    """`day` when it is an NYSE session inside the date partitions and not after the latest
    completed session; InvalidRunDateError saying which rule it breaks otherwise (`how_to_include`:
    the setting that would take in a date before the partitions). The bounds are
    checked before the calendar, which cannot place a date far outside its range."""
    first = dt.date.fromisoformat(first_partition) if isinstance(first_partition, str) else first_partition
    if day < first:
        raise InvalidRunDateError(f"{what} {day} is before the first date partition {first}"
                                  + (f"; {how_to_include}" if how_to_include else ""))
    if day > dt.datetime.now(dt.timezone.utc).date():  # in the future: no need to build the calendar
        raise InvalidRunDateError(f"{what} {day} is after the latest completed session (it is in the future)")
    latest = sessions.latest_completed_session()
    if day > latest:
        raise InvalidRunDateError(f"{what} {day} is after the latest completed session {latest}")
    if not sessions.is_session(day):
        raise InvalidRunDateError(f"{what} {day} is not an NYSE trading session (weekend or exchange holiday)")
    return day
