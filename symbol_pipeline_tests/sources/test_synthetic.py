"""The synthetic market: determinism, the total-return identity, known betas, coverage realism."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from symbol_pipeline.lib.factors import FACTOR_NAMES, RIDGE_ETFS, RIDGE_FACTORS, SPREAD_FACTORS
from symbol_pipeline.lib.sessions import sessions_between
from symbol_pipeline.sources.base import PRICE_COLUMNS
from symbol_pipeline.sources.csv_dir import CsvDirectorySource
from symbol_pipeline.sources.registry import get_price_source
from symbol_pipeline.sources.synthetic import CATALOGUE, ETFS, SyntheticMarket
from symbol_pipeline.sources.yfinance_source import YFinanceSource

D = dt.date


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(seed=11, n_symbols=300)


@pytest.fixture(scope="module")
def two_years(market: SyntheticMarket) -> pd.DataFrame:
    """Every symbol the market serves over 2023-2024."""
    result = market.fetch(market.available_symbols(), D(2023, 1, 1), D(2024, 12, 31))
    assert result.failures == {}
    return result.prices


def returns_from_prices(prices: pd.DataFrame) -> pd.DataFrame:
    """Wide total returns from raw closes and actions, only between consecutive sessions."""
    days = sessions_between(min(prices["date"]), max(prices["date"]))
    wide = {c: prices.pivot(index="date", columns="symbol", values=c) for c in ("close", "dividend", "split_ratio")}
    wide = {c: f.set_axis(pd.DatetimeIndex(f.index), axis=0).reindex(days) for c, f in wide.items()}
    return (wide["close"] + wide["dividend"]) * wide["split_ratio"] / wide["close"].shift(1) - 1


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


def test_total_return_identity_is_exact(market: SyntheticMarket, two_years: pd.DataFrame) -> None:
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


def test_etf_returns_have_the_intended_covariance(market: SyntheticMarket) -> None:
    r = market.generated_total_returns(list(ETFS), D(2000, 1, 1), D(2024, 12, 31)).dropna()
    vol = r.std() * np.sqrt(252)
    assert vol["SPY"] == pytest.approx(0.17, rel=0.05) and vol["USMV"] == pytest.approx(0.12, rel=0.05)
    assert vol["IWM"] == pytest.approx(0.22, rel=0.05) and vol["TLT"] == pytest.approx(0.15, rel=0.05)
    corr = r.corr()
    assert corr.loc["SPY", "TLT"] < 0 and corr.loc["SPY", "VUG"] > 0.9


def test_true_betas_recovered_by_ols(market: SyntheticMarket) -> None:
    stocks = ["NEE", "NVDA", "AAPL", "KO", "SYN0001", "SYN0002", "SYN0003"]
    start, end = D(2005, 1, 1), D(2024, 12, 31)  # about 5,000 sessions
    prices = market.fetch([*ETFS, *stocks], start, end).prices
    r = returns_from_prices(prices).dropna()
    truth = market.true_betas(stocks)
    assert list(truth.columns) == list(FACTOR_NAMES)
    assert truth.loc["NEE", "market_beta"] < 0.7 < 1.4 < truth.loc["NVDA", "market_beta"]
    assert truth.loc["NEE", "ir_beta"] > 0.1

    def check(y: pd.Series, x: pd.DataFrame, names: list[str]) -> None:
        fit = sm.OLS(y, sm.add_constant(x)).fit()
        for col, name in zip(x.columns, names):
            z = (fit.params[col] - truth.loc[y.name, name]) / fit.bse[col]
            assert abs(z) < 4.5, f"{y.name} {name}: estimate {fit.params[col]:.3f} true {truth.loc[y.name, name]:.3f}"

    for s in stocks:
        check(r[s], r[["SPY"]], ["market_beta"])
        check(r[s], r[["TLT"]], ["ir_beta"])
        check(r[s], r[list(RIDGE_ETFS)], [f.name for f in RIDGE_FACTORS])
        for spec in SPREAD_FACTORS:
            long, short = spec.regressors
            check(r[s], (r[long] - r[short]).rename("spread").to_frame(), [spec.name])


def test_etf_true_betas_are_their_own() -> None:
    truth = SyntheticMarket(seed=1, n_symbols=0).true_betas(["SPY", "TLT", "USMV"])
    assert truth.loc["SPY", "market_beta"] == pytest.approx(1.0)
    assert truth.loc["TLT", "ir_beta"] == pytest.approx(1.0)
    assert truth.loc["USMV", "ridge_low_volatility"] == pytest.approx(1.0)
    assert truth.loc["USMV", "ridge_value"] == pytest.approx(0.0, abs=1e-12)


def test_late_listing_delisting_and_gaps(market: SyntheticMarket) -> None:
    infos = [market.listing_info(s) for s in market.universe()]
    late = [i for i in infos if i.listed_late]
    gone = [i for i in infos if i.delisted]
    gappy = [i for i in infos if i.has_gaps]
    assert late and gone and gappy and len(late) + len(gone) + len(gappy) < 0.2 * len(infos)
    for s in [*ETFS, *CATALOGUE]:
        info = market.listing_info(s)
        assert not (info.listed_late or info.delisted or info.has_gaps)

    first = late[0]
    rows = market.fetch([first.symbol], first.first_session - dt.timedelta(days=60), first.first_session + dt.timedelta(days=60)).prices
    assert rows["date"].min() == first.first_session
    last = gone[0]
    rows = market.fetch([last.symbol], last.last_session - dt.timedelta(days=60), last.last_session + dt.timedelta(days=60)).prices
    assert rows["date"].max() == last.last_session
    after = market.fetch([last.symbol], last.last_session + dt.timedelta(days=1), last.last_session + dt.timedelta(days=200))
    assert after.prices.empty and after.failures == {}

    gap = gappy[0]
    missing = market.gap_sessions(gap.symbol, D(2023, 1, 1), D(2024, 12, 31))
    assert missing
    have = set(market.fetch([gap.symbol], D(2023, 1, 1), D(2024, 12, 31)).prices["date"])
    assert not have & set(missing)
    assert len(have) + len(missing) == len(sessions_between(D(2023, 1, 1), D(2024, 12, 31))) or gap.delisted or gap.listed_late


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


def test_fetch_speed(market: SyntheticMarket) -> None:
    big = SyntheticMarket(seed=11, n_symbols=2000)
    days = sessions_between(D(2024, 1, 1), D(2024, 12, 31))
    big.fetch(["SPY"], days[0], days[-1])  # ETF factor draw, cached per instance
    t0 = time.perf_counter()
    result = big.fetch(big.universe(), days[-200].date(), days[-1].date())
    elapsed = time.perf_counter() - t0
    assert len(result.prices) > 0.9 * 2000 * 200
    assert elapsed < 4.0, f"2,000 symbols x 200 sessions took {elapsed:.2f}s"


def test_registry(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("SYMBOL_PIPELINE_SYNTHETIC_SEED", "5")
    monkeypatch.setenv("SYMBOL_PIPELINE_SYNTHETIC_SYMBOLS", "12")
    monkeypatch.delenv("SYMBOL_PIPELINE_PRICE_SOURCE", raising=False)
    default = get_price_source()
    assert isinstance(default, SyntheticMarket) and (default.seed, default.n_symbols) == (5, 12)
    seeded = get_price_source("synthetic:42")
    assert isinstance(seeded, SyntheticMarket) and seeded.seed == 42
    monkeypatch.setenv("SYMBOL_PIPELINE_PRICE_SOURCE", f"csv:{tmp_path}")
    csv = get_price_source()
    assert isinstance(csv, CsvDirectorySource) and csv.directory == tmp_path
    assert isinstance(get_price_source("yfinance", download=lambda *a, **k: None), YFinanceSource)
    for bad in ("bogus", "csv:", "synthetic:x", "yfinance:1"):
        with pytest.raises(ValueError, match="csv:DIR"if bad != "synthetic:x" else "SEED"):
            get_price_source(bad)
