import numpy as np
import pandas as pd
import pytest

from symbol_pipeline.lib.metrics import METRIC_COLUMNS, daily_metrics


@pytest.fixture
def market():
    index = pd.bdate_range("2024-01-01", periods=300)
    rng = np.random.default_rng(0)
    returns = pd.DataFrame(rng.normal(0.0005, 0.012, (300, 3)), index=index, columns=["A", "B", "C"])
    returns.iloc[0] = np.nan
    closes = 100.0 * (1.0 + returns.fillna(0.0)).cumprod()
    return closes, returns


def test_known_answers(market):
    closes, returns = market
    date = closes.index[-1]
    got = daily_metrics(closes, returns, date)
    assert list(got.columns) == list(METRIC_COLUMNS)
    assert list(got.index) == ["A", "B", "C"] and got.index.name == "symbol"
    for symbol in got.index:
        r = returns[symbol]
        assert got.loc[symbol, "last_close"] == closes[symbol].iloc[-1]
        assert got.loc[symbol, "return_1d"] == pytest.approx(r.iloc[-1], abs=1e-15)
        for k in (5, 21, 63, 252):
            # Closes are the compounded returns, so the k-session return is a ratio of closes.
            expected = closes[symbol].iloc[-1] / closes[symbol].iloc[-1 - k] - 1.0
            assert got.loc[symbol, f"return_{k}d"] == pytest.approx(expected, abs=1e-12)
        for k in (21, 63):
            expected = r.iloc[-k:].std(ddof=1) * np.sqrt(252)
            assert got.loc[symbol, f"volatility_{k}d"] == pytest.approx(expected, abs=1e-12)


def test_missing_returns_and_short_history(market):
    closes, returns = market
    closes, returns = closes.copy(), returns.copy()
    date = closes.index[-1]
    returns.loc[returns.index[-3], "A"] = np.nan  # inside the 5-day span
    returns.iloc[-21:-16, returns.columns.get_loc("B")] = np.nan  # 5 of 21 missing: < 80% observed
    closes.loc[date, "C"] = np.nan  # no close today: last_close falls back to yesterday's
    got = daily_metrics(closes, returns, date)
    assert np.isnan(got.loc["A", "return_5d"]) and np.isfinite(got.loc["A", "return_1d"])
    assert np.isfinite(got.loc["A", "volatility_21d"])  # 20 of 21 observed
    assert np.isnan(got.loc["B", "volatility_21d"]) and np.isfinite(got.loc["B", "volatility_63d"])
    assert got.loc["C", "last_close"] == closes["C"].iloc[-2]

    early = closes.index[100]  # 100 returns so far: no 252-day return
    got = daily_metrics(closes, returns, early)
    assert got["return_252d"].isna().all() and got["return_63d"].notna().all()


def test_point_in_time(market):
    closes, returns = market
    date = closes.index[200]
    before = daily_metrics(closes, returns, date)
    closes2, returns2 = closes.copy(), returns.copy()
    closes2.iloc[201:] = 1.0
    returns2.iloc[201:] = 0.5
    pd.testing.assert_frame_equal(before, daily_metrics(closes2, returns2, date))


def test_date_must_be_a_row(market):
    closes, returns = market
    with pytest.raises(KeyError):
        daily_metrics(closes, returns, "2024-01-06")
