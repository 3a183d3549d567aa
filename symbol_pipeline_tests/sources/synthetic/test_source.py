"""SyntheticMarket as a price source: frames, determinism, the total-return identity, failures."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from symbol_pipeline.lib.sessions import sessions_between
from symbol_pipeline.sources.base import PRICE_COLUMNS
from symbol_pipeline.sources.synthetic import CATALOGUE, ETFS, SyntheticMarket
from symbol_pipeline_tests.calls import python_calls

D = dt.date


def test_frame_shape_and_types(market: SyntheticMarket) -> None:
    start, end = D(2024, 3, 1), D(2024, 3, 31)
    prices = market.fetch(["AAPL", "SPY", "SYN0001"], start, end).prices
    assert tuple(prices.columns) == PRICE_COLUMNS
    assert all(isinstance(d, dt.date) and not isinstance(d, dt.datetime) for d in prices["date"])
    assert all(prices[c].dtype == "float64" for c in PRICE_COLUMNS[2:])
    sessions = {t.date() for t in sessions_between(start, end)}
    assert set(prices["date"]) <= sessions and len(prices[prices.symbol == "AAPL"]) == len(sessions)
    assert (prices["low"] <= prices[["open", "close"]].min(axis=1)).all()
    assert (prices["high"] >= prices[["open", "close"]].max(axis=1)).all()
    assert (prices["volume"] > 0).all() and (prices["close"] > 0).all()


def test_same_seed_same_frames_and_other_seed_differs() -> None:
    args = (["AAPL", "SYN0002", "TLT"], D(2024, 1, 1), D(2024, 6, 30))
    a = SyntheticMarket(seed=3, n_symbols=10).fetch(*args).prices
    b = SyntheticMarket(seed=3, n_symbols=10).fetch(*args).prices
    pd.testing.assert_frame_equal(a, b)
    c = SyntheticMarket(seed=4, n_symbols=10).fetch(*args).prices
    assert not np.allclose(a["close"], c["close"])


def test_negative_universe_size_is_refused() -> None:
    with pytest.raises(ValueError, match="n_symbols"):
        SyntheticMarket(seed=1, n_symbols=-1)


def test_subset_fetch_equals_rows_of_bigger_fetch(market: SyntheticMarket, two_years: pd.DataFrame) -> None:
    subset = ["SYN0007", "NVDA", "SYN0123", "IWM", "SYN0299"]
    small = market.fetch(subset, D(2023, 1, 1), D(2024, 12, 31)).prices
    big = two_years[two_years.symbol.isin(subset)]
    key = ["symbol", "date"]
    pd.testing.assert_frame_equal(
        small.sort_values(key).reset_index(drop=True), big.sort_values(key).reset_index(drop=True)
    )
    # A universe of a different size serves its common symbols identically.
    other = SyntheticMarket(seed=11, n_symbols=5000).fetch(subset, D(2023, 1, 1), D(2024, 12, 31)).prices
    pd.testing.assert_frame_equal(small, other)


def test_closes_do_not_depend_on_the_window(market: SyntheticMarket, two_years: pd.DataFrame) -> None:
    short = market.fetch(["SYN0005", "AAPL"], D(2024, 5, 1), D(2024, 5, 31)).prices.reset_index(drop=True)
    long = two_years[two_years.symbol.isin(["SYN0005", "AAPL"])]
    long = long[(long.date >= D(2024, 5, 1)) & (long.date <= D(2024, 5, 31))].reset_index(drop=True)
    pd.testing.assert_frame_equal(short, long)
    # Far from the anchor date too.
    early = market.fetch(["AAPL"], D(1999, 3, 1), D(1999, 3, 31)).prices
    wider = market.fetch(["AAPL"], D(1998, 1, 1), D(2000, 1, 1)).prices
    wider = wider[(wider.date >= D(1999, 3, 1)) & (wider.date <= D(1999, 3, 31))]
    np.testing.assert_allclose(early["close"].to_numpy(), wider["close"].to_numpy(), rtol=1e-12)


def test_total_return_identity_is_exact(market: SyntheticMarket, two_years: pd.DataFrame, returns_from_prices) -> None:
    assert (two_years["dividend"] > 0).sum() > 100, "about half the names pay quarterly dividends"
    splits = two_years[two_years["split_ratio"] != 1]
    assert len(splits) >= 3 and set(splits["split_ratio"]) <= {2.0, 3.0, 4.0}
    observed = returns_from_prices(two_years)
    generated = market.generated_total_returns(list(observed.columns), D(2023, 1, 1), D(2024, 12, 31))
    both = observed.notna()
    assert both.to_numpy().sum() > 0.9 * observed.size
    np.testing.assert_allclose(observed[both].stack(), generated[both].stack(), rtol=0, atol=1e-12)
    # A raw close falls by the split ratio: the split day's return is an ordinary one.
    for _, row in splits.iterrows():
        assert abs(observed.loc[pd.Timestamp(row.date), row.symbol]) < 0.25


def test_unknown_ticker_is_a_failure_not_an_exception(market: SyntheticMarket) -> None:
    result = market.fetch(["AAPL", "NOPE", "SYN9999", "not a ticker!", "aapl"], D(2024, 1, 2), D(2024, 1, 31))
    assert result.failures["NOPE"] == "unknown ticker"
    assert result.failures["SYN9999"] == "unknown ticker"  # beyond this universe's 300 names
    assert "may only hold" in result.failures["not a ticker!"]
    assert set(result.prices["symbol"]) == {"AAPL"} and not result.prices.duplicated(["symbol", "date"]).any()
    assert market.fetch(["NOPE"], D(2024, 1, 2), D(2024, 1, 31)).prices.empty


def test_available_symbols(market: SyntheticMarket) -> None:
    available = market.available_symbols()
    assert available[:8] == list(ETFS) and "SYN0300" in available and "BRK-B" in available
    assert len(available) == len(set(available)) == 8 + 300 + len(CATALOGUE)
    assert len(CATALOGUE) >= 45
    assert market.knows("SYN0300") and not market.knows("SYN0301") and not market.knows("SYN300")


def test_fetch_is_vectorised_over_symbols() -> None:
    # What used to be a 4 s bound for 2,000 symbols × 200 sessions: the prices are drawn as arrays
    # for all symbols at once; per symbol only its key and parameters are computed (about seven
    # Python calls each). A per-symbol frame or draw would cost dozens of calls per symbol.
    days = sessions_between(D(2024, 1, 1), D(2024, 12, 31))
    calls = {}
    for n in (200, 2000):
        big = SyntheticMarket(seed=11, n_symbols=n)
        big.fetch(["SPY"], days[0], days[-1])  # ETF factor draw, cached per instance
        calls[n], result = python_calls(lambda big=big: big.fetch(big.universe(), days[-200].date(), days[-1].date()))
    assert len(result.prices) > 0.9 * 2000 * 200
    per_symbol = (calls[2000] - calls[200]) / 1800
    # 15: above the 10.1 measured on main after the issue-18 merge (2026-12-04), far
    # below the dozens a per-symbol frame or draw costs.
    assert per_symbol <= 15, f"{per_symbol:.1f} Python calls per symbol"
