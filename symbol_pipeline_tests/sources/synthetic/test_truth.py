"""The true betas: recovered by OLS on the market's own prices, exact for the ETFs themselves."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import statsmodels.api as sm

from symbol_pipeline.lib.factors import FACTOR_NAMES, RIDGE_ETFS, RIDGE_FACTORS, SPREAD_FACTORS
from symbol_pipeline.sources.synthetic import ETFS, SyntheticMarket, population_betas

D = dt.date


def test_true_betas_recovered_by_ols(market: SyntheticMarket, returns_from_prices) -> None:
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


def test_betas_scale_with_the_loadings(market: SyntheticMarket) -> None:
    loadings = market.loadings(["AAPL", "NEE"])
    pd.testing.assert_frame_equal(population_betas(2 * loadings), 2 * population_betas(loadings))
