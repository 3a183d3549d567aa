"""The dates the symbol layer may run for, the rule the CLI and the admin API share: an NYSE
session, inside the date partitions, not after the latest completed session; each refusal names
the rule it breaks."""

from __future__ import annotations

import datetime as dt

import pytest

from symbol_pipeline.lib import run_dates
from symbol_pipeline.lib.run_dates import InvalidRunDateError, check_run_date

FIRST = dt.date(2024, 3, 1)


def test_a_completed_session_inside_the_partitions_is_accepted():
    assert check_run_date(dt.date(2024, 6, 28), FIRST) == dt.date(2024, 6, 28)
    assert check_run_date(FIRST, "2024-03-01") == FIRST  # the first partition itself, given as text


def test_a_date_before_the_first_partition_names_it_and_the_setting_that_would_take_it_in():
    with pytest.raises(InvalidRunDateError) as refused:
        check_run_date(dt.date(2024, 2, 29), FIRST, what="--start", how_to_include="set PARTITIONS_START")
    assert str(refused.value) == "--start 2024-02-29 is before the first date partition 2024-03-01; set PARTITIONS_START"
    with pytest.raises(InvalidRunDateError, match=r"^date 1900-01-02 is before the first date partition 2024-03-01$"):
        check_run_date(dt.date(1900, 1, 2), FIRST)  # far outside the calendar: the bound speaks first


def test_a_future_date_is_refused_without_the_calendar():
    with pytest.raises(InvalidRunDateError, match="is after the latest completed session .it is in the future."):
        check_run_date(dt.date(2999, 1, 5), FIRST)


def test_today_before_the_close_is_after_the_latest_completed_session(monkeypatch):
    monkeypatch.setattr(run_dates.sessions, "latest_completed_session", lambda: dt.date(2024, 6, 27))
    with pytest.raises(InvalidRunDateError, match="^date 2024-06-28 is after the latest completed session 2024-06-27$"):
        check_run_date(dt.date(2024, 6, 28), FIRST)


@pytest.mark.parametrize("day", [dt.date(2024, 6, 29), dt.date(2024, 7, 4)], ids=["saturday", "independence-day"])
def test_a_day_the_exchange_is_closed_is_refused(day):
    with pytest.raises(InvalidRunDateError, match="is not an NYSE trading session"):
        check_run_date(day, FIRST)


def test_the_refusal_is_a_value_error():
    """Callers that catch ValueError for bad input (the API's 400s) catch it too."""
    assert issubclass(InvalidRunDateError, ValueError)
