"""A synthetic market shared by the tests of its modules, and two years of its prices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import pytest

from symbol_pipeline.lib.sessions import sessions_between
from symbol_pipeline.sources.synthetic import SyntheticMarket

D = dt.date


@pytest.fixture(scope="package")
def market() -> SyntheticMarket:
    return SyntheticMarket(seed=11, n_symbols=300)


@pytest.fixture(scope="package")
def two_years(market: SyntheticMarket) -> pd.DataFrame:
    """Every symbol the market serves over 2023-2024."""
    result = market.fetch(market.available_symbols(), D(2023, 1, 1), D(2024, 12, 31))
    assert result.failures == {}
    return result.prices


def _returns_from_prices(prices: pd.DataFrame) -> pd.DataFrame:
    """Wide total returns from raw closes and actions, only between consecutive sessions.

    Written with pivots, independently of lib.returns, so the two cross-check each other.
    """
    days = sessions_between(min(prices["date"]), max(prices["date"]))
    wide = {c: prices.pivot(index="date", columns="symbol", values=c) for c in ("close", "dividend", "split_ratio")}
    wide = {c: f.set_axis(pd.DatetimeIndex(f.index), axis=0).reindex(days) for c, f in wide.items()}
    return (wide["close"] + wide["dividend"]) * wide["split_ratio"] / wide["close"].shift(1) - 1


@pytest.fixture(scope="package")
def returns_from_prices() -> Callable[[pd.DataFrame], pd.DataFrame]:
    return _returns_from_prices
