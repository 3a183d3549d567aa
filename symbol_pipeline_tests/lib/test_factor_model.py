
import numpy as np
import pandas as pd
import pytest

from symbol_pipeline.lib.factor_model import EXPOSURE_COLUMNS, compute_factor_exposures
from symbol_pipeline.lib.factors import (
    BETA_CAP,
    FACTOR_BY_NAME,
    FACTOR_NAMES,
    FACTORS,
    QUALITY_CAPPED,
    QUALITY_INSUFFICIENT,
    QUALITY_NO_PRICE,
    QUALITY_OK,
    QUALITY_ZERO_VARIANCE,
    REGRESSOR_ETFS,
    RIDGE_ALPHA,
)
from symbol_pipeline.lib.returns import total_returns
from symbol_pipeline.lib.sessions import sessions_between
from symbol_pipeline_tests.reference import reference_exposures

TOL = 1e-8


# ---------------------------------------------------------------- real prices


@pytest.fixture(scope="module")
def real_closes(real_prices_dir):
    """Adjusted closes of the shared CSVs, wide: sessions × symbols."""
    series = {
        path.stem: pd.read_csv(path, parse_dates=["Date"], index_col="Date")["Close"]
        for path in sorted(real_prices_dir.glob("*.csv"))
    }
    return pd.DataFrame(series).sort_index()


@pytest.fixture(scope="module")
def real_returns(real_closes):
    """Returns computed the pipeline's way: long prices → total_returns on the NYSE grid."""
    long = real_closes.stack().rename("close").reset_index()
    long.columns = ["date", "symbol", "close"]
    long["date"] = long["date"].dt.date  # what the database hands back
    sessions = sessions_between(real_closes.index[0], real_closes.index[-1])
    assert len(sessions) == len(real_closes) == 358  # the files are the session grid, no gaps
    return total_returns(long, sessions)


@pytest.mark.parametrize("date", ["2024-12-31", "2024-06-28", "2023-10-31", "2023-09-15"])
def test_real_prices_match_statsmodels_and_sklearn(real_closes, real_returns, date):
    etf = real_returns[list(REGRESSOR_ETFS)]
    got = compute_factor_exposures(real_returns, etf, pd.Timestamp(date))
    assert list(got.columns) == list(EXPOSURE_COLUMNS)
    assert len(got) == len(real_closes.columns) * len(FACTORS)
    expected = reference_exposures(real_closes, pd.Timestamp(date))
    assert set(zip(got["symbol"], got["factor"])) == set(expected)
    for row in got.itertuples(index=False):
        beta, raw, alpha, r2, se, nobs = expected[row.symbol, row.factor]
        label = f"{row.symbol} {row.factor} {date}"
        assert row.observations == nobs, label
        if np.isnan(raw):
            assert row.quality == QUALITY_INSUFFICIENT, label
            assert np.isnan([row.beta, row.beta_uncapped, row.alpha, row.r_squared]).all(), label
            continue
        assert abs(row.beta - beta) <= TOL, label
        assert abs(row.beta_uncapped - raw) <= TOL, label
        assert abs(row.alpha - alpha) <= TOL, label
        assert abs(row.r_squared - r2) <= TOL, label
        if row.method == "ols":
            assert abs(row.std_error - se) <= TOL, label
        else:
            assert np.isnan(row.std_error), label
        assert row.capped == (abs(raw) > BETA_CAP), label
        assert row.quality == (QUALITY_CAPPED if row.capped else QUALITY_OK), label


def test_real_prices_early_date_has_market_betas_but_no_spreads(real_returns):
    # 2023-09-15 is the 33rd session: 32 returns, enough for 90/30 windows, not for 180/60.
    got = compute_factor_exposures(real_returns, real_returns[list(REGRESSOR_ETFS)], "2023-09-15")
    by_factor = got.groupby("factor")["quality"].agg(set)
    for spec in FACTORS:
        expected = QUALITY_INSUFFICIENT if spec.family == "spread" else QUALITY_OK
        assert by_factor[spec.name] <= {expected, QUALITY_CAPPED}, spec.name
    assert (got.loc[got["factor"] == "market_beta", "observations"] == 32).all()


def test_real_prices_utility_beta_below_chipmaker(real_returns):
    got = compute_factor_exposures(real_returns, real_returns[list(REGRESSOR_ETFS)], "2024-12-31")
    market = got[got["factor"] == "market_beta"].set_index("symbol")["beta"]
    assert market["NEE"] < market["NVDA"]
    assert market["SPY"] == pytest.approx(1.0, abs=1e-12)
    # SPY's ridge betas sum to about one (docs/methodology.md).
    ridge = got[(got["symbol"] == "SPY") & (got["method"] == "ridge")]["beta"].sum()
    assert ridge == pytest.approx(1.0, abs=0.1)


# ---------------------------------------------------------------- synthetic market


def synthetic(seed=0, T=200, N=30):
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2024-01-02", periods=T)
    common = rng.normal(0.0004, 0.01, (T, 1))
    etf = pd.DataFrame(common + rng.normal(0, 0.005, (T, 8)), index=index, columns=list(REGRESSOR_ETFS))
    etf["TLT"] = rng.normal(0, 0.008, T)
    true = rng.normal(1.0, 0.5, N)
    y = etf["SPY"].to_numpy()[:, None] * true + rng.normal(0, 0.01, (T, N))
    y[rng.random((T, N)) < 0.05] = np.nan
    stocks = pd.DataFrame(y, index=index, columns=[f"S{i:02d}" for i in range(N)])
    return stocks, etf, true


def test_one_row_per_symbol_and_factor_with_fixed_metadata():
    stocks, etf, _ = synthetic()
    got = compute_factor_exposures(stocks, etf, stocks.index[-1])
    assert len(got) == stocks.shape[1] * len(FACTORS)
    assert got.groupby("factor").size().to_dict() == {name: stocks.shape[1] for name in FACTOR_NAMES}
    assert got["observations"].dtype == np.int64 and got["capped"].dtype == bool
    for name, rows in got.groupby("factor"):
        spec = FACTOR_BY_NAME[name]
        assert (rows["window"] == spec.window).all() and (rows["min_observations"] == spec.min_observations).all()
        assert (rows["method"] == spec.method).all()
        if spec.method == "ridge":
            assert (rows["ridge_alpha"] == RIDGE_ALPHA).all() and rows["std_error"].isna().all()
        else:
            assert rows["ridge_alpha"].isna().all() and rows["std_error"].notna().all()
    assert (got["beta_cap"] == BETA_CAP).all()


def test_known_market_betas_are_recovered():
    stocks, etf, true = synthetic(T=400, N=40)
    got = compute_factor_exposures(stocks, etf, stocks.index[-1], factors=[FACTOR_BY_NAME["market_beta"]])
    # 90 rows, noise 0.01 over a 0.011 regressor: the standard error is about 0.1.
    np.testing.assert_allclose(got["beta"].to_numpy(), true, atol=0.4)
    assert np.corrcoef(got["beta"], true)[0, 1] > 0.9


def test_point_in_time_rows_after_the_date_change_nothing():
    stocks, etf, _ = synthetic()
    date = stocks.index[-20]
    before = compute_factor_exposures(stocks, etf, date)
    rng = np.random.default_rng(99)
    stocks2, etf2 = stocks.copy(), etf.copy()
    stocks2.iloc[-19:] = rng.normal(0, 0.5, (19, stocks.shape[1]))
    etf2.iloc[-19:] = rng.normal(0, 0.5, (19, etf.shape[1]))
    after = compute_factor_exposures(stocks2, etf2, date)
    pd.testing.assert_frame_equal(before, after)
    # ...while a change on the date itself does change the betas.
    stocks2.loc[date] += 0.05
    assert not compute_factor_exposures(stocks2, etf2, date)["beta"].equals(before["beta"])


def test_capped_and_zero_variance_and_no_price_qualities():
    stocks, etf, _ = synthetic()
    stocks["BIG"] = 8.0 * etf["SPY"] + 0.001 * np.sin(np.arange(len(etf)))
    stocks["NEG"] = -9.0 * etf["SPY"]
    stocks["EMPTY"] = np.nan
    got = compute_factor_exposures(stocks, etf, stocks.index[-1])
    market = got[got["factor"] == "market_beta"].set_index("symbol")
    assert market.loc["BIG", "quality"] == QUALITY_CAPPED and market.loc["BIG", "beta"] == BETA_CAP
    assert market.loc["BIG", "beta_uncapped"] == pytest.approx(8.0, abs=0.1) and market.loc["BIG", "capped"]
    assert market.loc["NEG", "beta"] == -BETA_CAP and market.loc["NEG", "quality"] == QUALITY_CAPPED
    empty = got[got["symbol"] == "EMPTY"]
    assert (empty["quality"] == QUALITY_INSUFFICIENT).all() and (empty["observations"] == 0).all()
    assert empty["beta"].isna().all()

    # A regressor stuck at one value over the window: no beta, flagged, for OLS and the joint ridge.
    flat = etf.copy()
    flat.iloc[-90:, flat.columns.get_loc("TLT")] = 0.0
    flat.iloc[-90:, flat.columns.get_loc("USMV")] = 0.001
    got = compute_factor_exposures(stocks.drop(columns="EMPTY"), flat, stocks.index[-1])
    for name in ("ir_beta", *[f.name for f in FACTORS if f.family == "ridge"]):
        rows = got[got["factor"] == name]
        assert (rows["quality"] == QUALITY_ZERO_VARIANCE).all(), name
        assert rows["beta"].isna().all(), name
    assert (got.loc[got["factor"] == "market_beta", "quality"] != QUALITY_ZERO_VARIANCE).all()

    priced = pd.Series(True, index=stocks.columns)
    priced["S03"] = False
    got = compute_factor_exposures(stocks, etf, stocks.index[-1], priced_on_date=priced)
    s03 = got[got["symbol"] == "S03"]
    assert len(s03) == len(FACTORS)
    assert (s03["quality"] == QUALITY_NO_PRICE).all() and s03["beta"].isna().all()
    assert (got.loc[got["symbol"] == "S04", "quality"] == QUALITY_OK).all()


def test_date_outside_the_index_is_an_error():
    stocks, etf, _ = synthetic()
    with pytest.raises(KeyError):
        compute_factor_exposures(stocks, etf, "2024-01-06")  # a Saturday
    with pytest.raises(KeyError, match="lacks"):
        compute_factor_exposures(stocks, etf.drop(columns="QUAL"), stocks.index[-1])


def test_ridge_factors_share_one_joint_fit():
    stocks, etf, _ = synthetic()
    only_size = compute_factor_exposures(stocks, etf, stocks.index[-1], factors=[FACTOR_BY_NAME["ridge_size"]])
    full = compute_factor_exposures(stocks, etf, stocks.index[-1])
    np.testing.assert_array_equal(
        only_size["beta"].to_numpy(), full.loc[full["factor"] == "ridge_size", "beta"].to_numpy()
    )
