"""A session is completed, and its date partition exists, from 16:00 New York on its day."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster._core.definitions.partitions.context import partition_loading_context

from symbol_pipeline.defs.partitions import trading_date_partitions
from symbol_pipeline.lib import sessions

# (UTC instant, the latest completed session then). 2026-11-26 is Thanksgiving; 2026-11-27 closes
# early (13:00) and still counts from 16:00.
CASES = [
    ("2026-12-02 18:30", "2026-12-01"),  # Wednesday 13:30 New York: the session is trading
    ("2026-12-02 20:59", "2026-12-01"),
    ("2026-12-02 21:00", "2026-12-02"),  # 16:00 New York
    ("2026-11-27 19:30", "2026-11-25"),  # 14:30 on the early-close day
    ("2026-11-27 21:05", "2026-11-27"),
    ("2026-11-30 03:00", "2026-11-27"),  # Sunday night
]


@pytest.mark.parametrize(("now", "expected"), CASES)
def test_latest_completed_session_turns_at_the_regular_close(now, expected):
    assert sessions.latest_completed_session(pd.Timestamp(now, tz="UTC")) == dt.date.fromisoformat(expected)


@pytest.mark.parametrize(("now", "expected"), [c for c in CASES if c[0] != "2026-11-27 19:30"] + [
    # The early-close day's morning: 2026-11-26 closed the window of 11-25, so 11-27 shows at once
    # (the holiday edge named in defs/partitions.py), half a day before it is completed.
    ("2026-11-27 19:30", "2026-11-27"),
])
def test_the_last_date_partition_is_the_latest_completed_session(now, expected):
    partitions = trading_date_partitions("2026-11-02")
    with partition_loading_context(effective_dt=pd.Timestamp(now, tz="UTC").to_pydatetime()):
        keys = partitions.get_partition_keys()
    assert keys[-1] == expected
    assert "2026-11-26" not in keys  # the holiday is no partition
