"""PriceFrame: a good frame passes, each rule fails on its own bad frame, as a warning that names
counts and symbols; the rules are vectorised, so a million rows are checked in one pass."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from symbol_pipeline.defs.symbols.frames import (
    PRICE_FRAME_CHECK_NAME,
    PositiveFiniteCloses,
    PriceFrame,
    SortedDatesPerSymbol,
    UniqueDatesPerSymbol,
    price_frame_check_result,
    price_frame_check_spec,
)
from symbol_pipeline.sources.base import empty_prices
from symbol_pipeline.sources.synthetic import SyntheticMarket

D = dt.date


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    market = SyntheticMarket(seed=2, n_symbols=30)
    return market.fetch(market.available_symbols(), D(2024, 1, 1), D(2024, 3, 31)).prices


def _value(result: dg.AssetCheckResult, key: str):
    return result.metadata[key].value


def test_a_good_frame_passes(good: pd.DataFrame) -> None:
    result = price_frame_check_result(good, "symbol_prices")
    assert result.passed and result.check_name == PRICE_FRAME_CHECK_NAME
    assert result.asset_key == dg.AssetKey("symbol_prices")
    assert _value(result, "rows") == len(good)
    assert all(_value(result, key) == 0 for key in ("schema_errors", "duplicate_dates", "unsorted_dates", "bad_closes"))
    assert dg.check_dagster_type(PriceFrame, good).success
    assert price_frame_check_result(empty_prices(), "symbol_prices").passed


def test_rows_of_a_symbol_need_not_be_adjacent(good: pd.DataFrame) -> None:
    by_date = good.sort_values(["date", "symbol"], kind="stable")  # symbols interleaved, each sorted
    assert price_frame_check_result(by_date, "symbol_prices").passed


def _assert_only(result: dg.AssetCheckResult, key: str, count: int, symbols: str) -> None:
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert _value(result, key) == count and _value(result, f"{key}_symbols") == symbols
    others = {"duplicate_dates", "unsorted_dates", "bad_closes"} - {key}
    assert all(_value(result, other) == 0 for other in others)


def test_a_repeated_date_fails(good: pd.DataFrame) -> None:
    aapl = good.index[good["symbol"] == "AAPL"]
    bad = pd.concat([good, good.loc[aapl[3:5]]]).sort_values(["symbol", "date"], kind="stable")
    _assert_only(price_frame_check_result(bad, "symbol_prices"), "duplicate_dates", 2, "AAPL")
    assert not dg.check_dagster_type(PriceFrame, bad).success


def test_unsorted_dates_fail(good: pd.DataFrame) -> None:
    order = good.index.to_numpy().copy()
    first = np.flatnonzero(good["symbol"].to_numpy() == "SYN0003")[:2]
    order[first] = order[first[::-1]]  # swap SYN0003's first two sessions
    bad = good.loc[order]
    _assert_only(price_frame_check_result(bad, "symbol_prices"), "unsorted_dates", 1, "SYN0003")
    assert not dg.check_dagster_type(PriceFrame, bad).success


@pytest.mark.parametrize("close", [0.0, -3.0, np.nan, np.inf])
def test_a_close_not_positive_and_finite_fails(good: pd.DataFrame, close: float) -> None:
    bad = good.copy()
    bad.loc[bad.index[bad["symbol"] == "NVDA"][7], "close"] = close
    bad.loc[bad.index[bad["symbol"] == "KO"][2], "close"] = close
    _assert_only(price_frame_check_result(bad, "symbol_prices"), "bad_closes", 2, "KO, NVDA")
    assert not dg.check_dagster_type(PriceFrame, bad).success


def test_schema_problems_are_reported(good: pd.DataFrame) -> None:
    result = price_frame_check_result(good.drop(columns=["volume"]).assign(close=good["close"].astype(str)), "x")
    assert not result.passed and _value(result, "schema_errors") == 2
    assert "volume" in _value(result, "schema") and "close" in _value(result, "schema")


def test_examples_are_a_few_symbols(good: pd.DataFrame) -> None:
    result = price_frame_check_result(good.assign(close=-1.0), "symbol_prices")
    assert _value(result, "bad_closes") == len(good)
    assert len(_value(result, "bad_closes_symbols").split(", ")) == 5


def test_the_rules_are_vectorised_over_a_million_rows() -> None:
    n_symbols, n_dates = 5_000, 200
    dates = pd.bdate_range("2024-01-01", periods=n_dates).date
    frame = pd.DataFrame({
        "symbol": np.repeat([f"S{i:05d}" for i in range(n_symbols)], n_dates),
        "date": np.tile(dates, n_symbols),
        "close": np.full(n_symbols * n_dates, 10.0),
    })
    frame.loc[123_456, "close"] = np.nan
    for rule in (UniqueDatesPerSymbol(""), SortedDatesPerSymbol(""), PositiveFiniteCloses("")):
        bad = rule.offending(frame)  # one pass of array operations: a row-wise .apply would take minutes
        assert bad.shape == (len(frame),) and bad.dtype == bool
    assert PositiveFiniteCloses("").offending(frame).sum() == 1


def test_the_check_spec_is_attached_to_the_asset() -> None:
    spec = price_frame_check_spec("symbol_prices")
    assert spec.name == PRICE_FRAME_CHECK_NAME and spec.asset_key == dg.AssetKey("symbol_prices")

    @dg.asset(check_specs=[price_frame_check_spec("prices")])
    def prices():
        market = SyntheticMarket(seed=1, n_symbols=2)
        frame = market.fetch(["SYN0001", "SYN0002"], D(2024, 1, 2), D(2024, 1, 31)).prices
        frame.loc[0, "close"] = -1.0
        yield dg.Output(None)
        yield price_frame_check_result(frame, "prices")

    result = dg.materialize([prices])
    assert result.success  # a warning never blocks
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
