"""NYSE trading sessions from exchange_calendars (holidays and early closes kept upstream)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

EXCHANGE = "XNYS"
EXCHANGE_TIMEZONE = "America/New_York"
_CALENDAR_START = "1995-01-03"
# A fixed end, not exchange_calendars' default (a year after the day the calendar is built): two
# processes started on different days must list the same holidays, or their date partitions
# differ (issue 17). The holiday rules reach any year; ad hoc closures arrive with the package.
_CALENDAR_END = "2036-12-31"
# How far past the first date partition the partitions exclude holidays: a function of the stored
# first date alone, so every process computes the same list. The window moves daily, so this
# always reaches years past today.
EXCLUSION_YEARS = 3
# NYSE's regular close: a session's date partition and its "completed" status start then.
REGULAR_CLOSE = dt.time(16, 0)


class NotATradingDayError(ValueError):
    """A date that is not an NYSE session."""


@lru_cache(maxsize=1)
def _calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar(EXCHANGE, start=_CALENDAR_START, end=_CALENDAR_END)


def _ts(day: dt.date | str) -> pd.Timestamp:
    return pd.Timestamp(day).normalize()


def is_session(day: dt.date | str) -> bool:
    return bool(_calendar().is_session(_ts(day)))


def require_session(day: dt.date | str) -> dt.date:
    if not is_session(day):
        raise NotATradingDayError(f"{_ts(day).date()} is not an NYSE trading session")
    return _ts(day).date()


def sessions_between(start: dt.date | str, end: dt.date | str) -> pd.DatetimeIndex:
    """Sessions in [start, end], both ends included, as tz-naive midnight timestamps."""
    if _ts(end) < _ts(start):
        return pd.DatetimeIndex([])
    return _calendar().sessions_in_range(_ts(start), _ts(end))


def sessions_ending(day: dt.date | str, count: int) -> pd.DatetimeIndex:
    """The `count` sessions ending at `day` (a session) inclusive."""
    cal = _calendar()
    end = cal.date_to_session(_ts(day), direction="previous")
    return cal.sessions_window(end, -count)


def previous_session(day: dt.date | str) -> dt.date:
    return _calendar().previous_session(_ts(day)).date()


def session_offset(day: dt.date | str, offset: int) -> dt.date:
    """The session `offset` sessions from `day` (negative goes back); `day` must be a session."""
    cal = _calendar()
    return cal.session_offset(_ts(require_session(day)), offset).date()


def latest_completed_session(now: pd.Timestamp | None = None) -> dt.date:
    """The last session whose day has reached REGULAR_CLOSE in New York (default now: the current time).

    The regular close, not the day's actual one: on an early-close day (13:00) the session counts
    from 16:00 like any other, the moment its date partition appears (defs/partitions.py), so that
    "completed" and "a partition exists" are one rule.
    """
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now.tzinfo is None:
        now = now.tz_localize("UTC")
    local = now.tz_convert(EXCHANGE_TIMEZONE)
    day = local.date() if local.time() >= REGULAR_CLOSE else local.date() - dt.timedelta(days=1)
    return _calendar().date_to_session(_ts(day), direction="previous").date()


def all_sessions() -> pd.DatetimeIndex:
    """Every session the calendar knows, from its start to about a year ahead."""
    cal = _calendar()
    return cal.sessions_in_range(cal.first_session, cal.last_session)


def last_known_session() -> dt.date:
    """The last session of the calendar (its fixed end, _CALENDAR_END)."""
    return _calendar().last_session.date()


def first_session() -> dt.date:
    """The calendar's first session: the earliest date any date input can mean."""
    return _calendar().first_session.date()


def exclusion_horizon(start: dt.date | str) -> dt.date:
    """The last day whose holidays the partitions starting at `start` exclude (a function of `start` only)."""
    day = _ts(start).date()
    return min(dt.date(day.year + EXCLUSION_YEARS, 12, 31), last_known_session())


def window_start(last: dt.date | str, count: int) -> dt.date:
    """The first of the `count` sessions ending at `last` (a session)."""
    if count < 1:
        raise ValueError(f"a window holds at least one session, not {count}")
    return sessions_ending(last, count)[0].date()


def non_session_weekdays(start: dt.date | str, end: dt.date | str) -> list[dt.date]:
    """Weekdays in [start, end] on which the exchange is closed (holidays), as far as known."""
    end = min(_ts(end), _calendar().last_session)
    weekdays = pd.bdate_range(_ts(start), end)
    sessions = set(sessions_between(start, end))
    return [d.date() for d in weekdays if d not in sessions]
