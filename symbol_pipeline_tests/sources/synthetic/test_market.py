"""The market's constants and calendar helpers."""

from __future__ import annotations

import datetime as dt

import numpy as np

from symbol_pipeline.lib.factors import REGRESSOR_ETFS
from symbol_pipeline.lib.sessions import sessions_between
from symbol_pipeline.sources.synthetic.market import (
    CATALOGUE,
    ETF_DAILY_COVARIANCE,
    ETFS,
    calendar_dates,
    calendar_index,
    session_window,
    universe_symbol,
)


def test_etf_covariance_is_a_covariance() -> None:
    assert ETFS == REGRESSOR_ETFS and ETF_DAILY_COVARIANCE.shape == (8, 8)
    np.testing.assert_array_equal(ETF_DAILY_COVARIANCE, ETF_DAILY_COVARIANCE.T)
    assert np.linalg.eigvalsh(ETF_DAILY_COVARIANCE).min() > 0
    assert not set(CATALOGUE) & set(ETFS)


def test_session_window_is_the_sessions_in_the_range() -> None:
    start, end = dt.date(2024, 3, 1), dt.date(2024, 3, 31)
    w0, w1 = session_window(start, end)
    np.testing.assert_array_equal(calendar_index()[w0 : w1 + 1], sessions_between(start, end))
    assert calendar_dates()[w0] == dt.date(2024, 3, 1)
    assert session_window(None, None) == (0, len(calendar_index()) - 1)
    saturday = dt.date(2024, 3, 2)
    w0, w1 = session_window(saturday, saturday)
    assert w1 < w0  # no session in the range


def test_universe_symbol() -> None:
    assert universe_symbol(1) == "SYN0001" and universe_symbol(12345) == "SYN12345"
