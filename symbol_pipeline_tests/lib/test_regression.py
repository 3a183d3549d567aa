import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from symbol_pipeline.lib.factor_model import compute_factor_exposures
from symbol_pipeline.lib.factors import FACTORS, REGRESSOR_ETFS, RIDGE_ALPHA, RIDGE_ETFS
from symbol_pipeline.lib.regression import cap_betas, ols_betas, ridge_betas
from symbol_pipeline.lib.returns import total_returns
from symbol_pipeline.lib.sessions import sessions_between
from symbol_pipeline_tests.reference import read_real_closes

TOL = 1e-8


def reference_ols(y, x, min_obs):
    """statsmodels fitted column by column: (beta, alpha, r2, se, nobs), NaN where not estimable."""
    out = np.full((y.shape[1], 4), np.nan)
    nobs = np.zeros(y.shape[1], dtype=np.int64)
    for n in range(y.shape[1]):
        xn = x if x.ndim == 1 else x[:, n]
        rows = np.isfinite(y[:, n]) & np.isfinite(xn)
        nobs[n] = rows.sum()
        if nobs[n] < min_obs or np.ptp(xn[rows]) == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.OLS(y[rows, n], sm.add_constant(xn[rows], has_constant="add")).fit()
        out[n] = fit.params[1], fit.params[0], fit.rsquared, fit.bse[1]
    return out, nobs


def reference_ridge(y, X, alpha, min_obs):
    """The docs/methodology.md ridge pipeline per column: (betas (N, K), intercept, r2, nobs)."""
    N, K = y.shape[1], X.shape[1]
    betas = np.full((N, K), np.nan)
    intercept = np.full(N, np.nan)
    r2 = np.full(N, np.nan)
    nobs = np.zeros(N, dtype=np.int64)
    for n in range(N):
        rows = np.isfinite(y[:, n]) & np.isfinite(X).all(axis=1)
        nobs[n] = rows.sum()
        if nobs[n] < min_obs or (np.ptp(X[rows], axis=0) == 0).any():
            continue
        scaler = StandardScaler().fit(X[rows])
        Z = scaler.transform(X[rows])
        model = Ridge(alpha=alpha, fit_intercept=True).fit(Z, y[rows, n])
        betas[n] = model.coef_ / scaler.scale_
        intercept[n] = model.intercept_ - scaler.mean_ @ betas[n]
        r2[n] = model.score(Z, y[rows, n])
    return betas, intercept, r2, nobs


def assert_close(actual, expected, tol=TOL):
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol, equal_nan=True)


def random_market(seed, W=90, N=60, K=6, nan_share=0.15):
    """Correlated ETF-like regressors and stock returns with NaNs scattered in both."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0.0005, 0.01, (W, 1))
    X = common + rng.normal(0, 0.006, (W, K))
    X[rng.random((W, K)) < 0.02] = np.nan
    true = rng.normal(1.0, 0.6, (K, N)) / K
    y = np.nan_to_num(X) @ true + rng.normal(0, 0.015, (W, N)) + 0.0003
    y[rng.random((W, N)) < nan_share] = np.nan
    return X, y


# ---------------------------------------------------------------- OLS against statsmodels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ols_matches_statsmodels_with_scattered_nans(seed):
    X, y = random_market(seed)
    y[:, 0] = np.nan  # all-NaN column
    y[:62, 1] = np.nan  # leaves at most 28 rows: below 30
    x = X[:, 0]
    got = ols_betas(y, x, min_obs=30)
    expected, nobs = reference_ols(y, x, 30)
    np.testing.assert_array_equal(got.nobs, nobs)
    assert got.nobs.dtype == np.int64
    assert_close(got.beta, expected[:, 0])
    assert_close(got.alpha, expected[:, 1])
    assert_close(got.r_squared, expected[:, 2])
    assert_close(got.std_error, expected[:, 3])
    assert got.nobs[0] == 0 and np.isnan(got.beta[0])
    assert np.isfinite(got.beta[2:]).all()


def test_ols_with_one_regressor_per_column_matches_statsmodels():
    X, y = random_market(7, W=180, N=20)
    rng = np.random.default_rng(7)
    x = np.nan_to_num(X[:, [0]]) + rng.normal(0, 0.004, y.shape)  # (W, N), its own NaNs
    x[rng.random(x.shape) < 0.05] = np.nan
    got = ols_betas(y, x, min_obs=60)
    expected, nobs = reference_ols(y, x, 60)
    np.testing.assert_array_equal(got.nobs, nobs)
    assert_close(got.beta, expected[:, 0])
    assert_close(got.alpha, expected[:, 1])
    assert_close(got.r_squared, expected[:, 2])
    assert_close(got.std_error, expected[:, 3])


def test_ols_minimum_observations_boundary():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.01, 40)
    y = np.column_stack([1.1 * x + rng.normal(0, 0.01, 40)] * 3)
    y[:11, 0] = np.nan  # 29 rows: one short
    y[:10, 1] = np.nan  # 30 rows: exactly the minimum
    got = ols_betas(y, x, min_obs=30)
    assert list(got.nobs) == [29, 30, 40]
    assert np.isnan([got.beta[0], got.alpha[0], got.r_squared[0], got.std_error[0]]).all()
    assert np.isfinite([got.beta[1], got.beta[2]]).all()
    assert not got.zero_variance.any()


def test_ols_zero_variance_regressor_over_the_symbols_rows():
    rng = np.random.default_rng(4)
    x = rng.normal(0, 0.01, 60)
    x[:40] = 0.1  # 0.1 has no exact float: a mean of copies of it need not equal it
    y = rng.normal(0, 0.01, (60, 2))
    y[40:, 0] = np.nan  # column 0 sees only the constant stretch
    got = ols_betas(y, x, min_obs=30)
    assert got.zero_variance.tolist() == [True, False]
    assert np.isnan([got.beta[0], got.alpha[0], got.r_squared[0], got.std_error[0]]).all()
    assert got.nobs[0] == 40
    assert np.isfinite(got.beta[1])


def test_ols_r_squared_of_exactly_zero_is_zero_not_nan():
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    y = (x**2)[:, None]  # symmetric: no linear relation at all
    got = ols_betas(y, x, min_obs=3)
    assert got.beta[0] == 0.0
    assert got.r_squared[0] == 0.0
    assert got.alpha[0] == pytest.approx(2.0)


def test_ols_known_answer():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.01, 250)
    y = (0.0002 + 1.3 * x + rng.normal(0, 0.0005, 250))[:, None]
    got = ols_betas(y, x, min_obs=30)
    assert got.beta[0] == pytest.approx(1.3, abs=0.02)
    assert got.alpha[0] == pytest.approx(0.0002, abs=1e-4)
    assert got.r_squared[0] > 0.99


def test_ols_scaling_y_scales_beta_and_shifting_y_moves_alpha_only():
    X, y = random_market(6)
    x = X[:, 0]
    base = ols_betas(y, x, 30)
    scaled = ols_betas(2.5 * y, x, 30)
    np.testing.assert_allclose(scaled.beta, 2.5 * base.beta, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(scaled.r_squared, base.r_squared, rtol=1e-12)
    shifted = ols_betas(y + 0.01, x, 30)
    np.testing.assert_allclose(shifted.beta, base.beta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(shifted.alpha, base.alpha + 0.01, rtol=0, atol=1e-12)
    np.testing.assert_allclose(shifted.std_error, base.std_error, rtol=1e-9)


def test_ols_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        ols_betas(np.zeros((10, 3)), np.zeros(9), 5)
    with pytest.raises(ValueError):
        ols_betas(np.zeros((10, 3)), np.zeros((10, 2)), 5)


# ---------------------------------------------------------------- ridge against scikit-learn


@pytest.mark.parametrize("seed,alpha", [(10, 1.0), (11, 1.0), (12, 5.0)])
def test_ridge_matches_sklearn_pipeline_with_scattered_nans(seed, alpha):
    X, y = random_market(seed)
    y[:, 0] = np.nan
    y[:65, 1] = np.nan
    got = ridge_betas(y, X, alpha=alpha, min_obs=30)
    betas, intercept, r2, nobs = reference_ridge(y, X, alpha, 30)
    np.testing.assert_array_equal(got.nobs, nobs)
    assert got.betas.shape == (y.shape[1], X.shape[1])
    assert_close(got.betas, betas)
    assert_close(got.alpha, intercept)
    assert_close(got.r_squared, r2)
    assert np.isnan(got.betas[:2]).all() and not got.zero_variance.any()
    assert np.isfinite(got.betas[2:]).all()


def test_ridge_minimum_boundary_and_zero_variance():
    X, y = random_market(13, N=4, nan_share=0.0)
    X[:50, 5] = 0.1  # regressor 5 constant over the first 50 rows
    y[:59, 0] = np.nan  # 31 rows that see regressor 5 move: fine
    y[:61, 1] = np.nan  # 29 rows: too few
    y[50:, 2] = np.nan  # only the constant stretch: zero variance
    got = ridge_betas(y, X, alpha=1.0, min_obs=30)
    betas, intercept, r2, nobs = reference_ridge(y, X, 1.0, 30)
    np.testing.assert_array_equal(got.nobs, nobs)
    assert got.zero_variance.tolist() == [False, False, True, False]
    assert np.isnan(got.betas[[1, 2]]).all() and np.isnan(got.alpha[[1, 2]]).all()
    assert_close(got.betas, betas)
    assert_close(got.alpha, intercept)
    assert_close(got.r_squared, r2)


def test_ridge_is_linear_in_y():
    X, y = random_market(14)
    base = ridge_betas(y, X, 1.0, 30)
    scaled = ridge_betas(-3.0 * y, X, 1.0, 30)
    np.testing.assert_allclose(scaled.betas, -3.0 * base.betas, rtol=1e-10, atol=1e-13)
    shifted = ridge_betas(y + 0.02, X, 1.0, 30)
    np.testing.assert_allclose(shifted.betas, base.betas, rtol=0, atol=1e-12)
    np.testing.assert_allclose(shifted.alpha, base.alpha + 0.02, rtol=0, atol=1e-12)


def test_ridge_known_answer_with_little_shrinkage():
    # Many rows and a small penalty: the ridge is close to the true coefficients.
    rng = np.random.default_rng(15)
    X = rng.normal(0, 0.01, (2000, 3))
    y = (X @ np.array([0.5, -1.2, 2.0]) + rng.normal(0, 0.001, 2000))[:, None]
    got = ridge_betas(y, X, alpha=0.01, min_obs=30)
    np.testing.assert_allclose(got.betas[0], [0.5, -1.2, 2.0], atol=0.01)


# ---------------------------------------------------------------- capping


def test_cap_betas():
    capped, flag = cap_betas(np.array([1.0, -7.5, 5.0, 6.0, np.nan, -5.0]), 5.0)
    np.testing.assert_array_equal(capped, [1.0, -5.0, 5.0, 5.0, np.nan, -5.0])
    assert flag.tolist() == [False, True, False, True, False, False]
    assert flag.dtype == bool


# ---------------------------------------------------------------- residual variance (the risk model's s²)

RESIDUAL_TOL = 1e-10


def reference_ols_mse_resid(y, x, min_obs):
    """statsmodels' mse_resid = RSS / (n − 2) per column, NaN where no beta is estimated."""
    out = np.full(y.shape[1], np.nan)
    for n in range(y.shape[1]):
        xn = x if x.ndim == 1 else x[:, n]
        rows = np.isfinite(y[:, n]) & np.isfinite(xn)
        if rows.sum() < min_obs or np.ptp(xn[rows]) == 0:
            continue
        out[n] = sm.OLS(y[rows, n], sm.add_constant(xn[rows], has_constant="add")).fit().mse_resid
    return out


def reference_ridge_residual_variance(y, X, alpha, min_obs):
    """RSS / (n − K − 1) of the scikit-learn fit's residuals y − intercept − Xβ (uncapped), per column."""
    out = np.full(y.shape[1], np.nan)
    K = X.shape[1]
    for n in range(y.shape[1]):
        rows = np.isfinite(y[:, n]) & np.isfinite(X).all(axis=1)
        if rows.sum() < min_obs or (np.ptp(X[rows], axis=0) == 0).any():
            continue
        scaler = StandardScaler().fit(X[rows])
        model = Ridge(alpha=alpha, fit_intercept=True).fit(scaler.transform(X[rows]), y[rows, n])
        betas = model.coef_ / scaler.scale_
        intercept = model.intercept_ - scaler.mean_ @ betas
        resid = y[rows, n] - intercept - X[rows] @ betas
        np.testing.assert_allclose(resid, y[rows, n] - model.predict(scaler.transform(X[rows])), atol=1e-14)
        if rows.sum() > K + 1:
            out[n] = resid @ resid / (rows.sum() - K - 1)
    return out


def assert_residuals_close(actual, expected):
    assert_close(actual, expected, RESIDUAL_TOL)
    # Also relative (s² is ~1e-4), above a floor for the ETFs regressed on themselves (s² ≈ 0).
    np.testing.assert_allclose(actual, expected, rtol=1e-7, atol=1e-15, equal_nan=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ols_residual_variance_is_statsmodels_mse_resid(seed):
    X, y = random_market(seed)
    y[:, 0] = np.nan
    y[:62, 1] = np.nan  # below the minimum: no estimate, no residual variance
    got = ols_betas(y, X[:, 0], min_obs=30)
    assert_residuals_close(got.residual_variance, reference_ols_mse_resid(y, X[:, 0], 30))
    assert np.isnan(got.residual_variance[:2]).all() and np.isfinite(got.residual_variance[2:]).all()
    # One regressor per column, its own NaNs (the per-symbol path of ols_betas).
    rng = np.random.default_rng(seed)
    x = np.nan_to_num(X[:, [1]]) + rng.normal(0, 0.004, y.shape)
    x[rng.random(x.shape) < 0.05] = np.nan
    assert_residuals_close(ols_betas(y, x, 30).residual_variance, reference_ols_mse_resid(y, x, 30))


def test_ols_residual_variance_known_answer_and_scaling():
    rng = np.random.default_rng(8)
    x = rng.normal(0, 0.01, 5000)
    noise = rng.normal(0, 0.02, 5000)
    y = (0.0001 + 0.9 * x + noise)[:, None]
    got = ols_betas(y, x, 30)
    assert got.residual_variance[0] == pytest.approx(noise.var(), rel=0.002)  # the noise the fit could not explain
    np.testing.assert_allclose(ols_betas(3 * y, x, 30).residual_variance, 9 * got.residual_variance, rtol=1e-10)
    np.testing.assert_allclose(got.std_error**2 * np.sum((x - x.mean()) ** 2), got.residual_variance, rtol=1e-10)


def test_ols_zero_variance_has_no_residual_variance():
    rng = np.random.default_rng(4)
    x = np.full(60, 0.1)
    got = ols_betas(rng.normal(0, 0.01, (60, 2)), x, min_obs=30)
    assert got.zero_variance.all() and np.isnan(got.residual_variance).all()


@pytest.mark.parametrize("seed,alpha", [(10, 1.0), (11, 1.0), (12, 5.0)])
def test_ridge_residual_variance_is_sklearn_residuals(seed, alpha):
    X, y = random_market(seed)
    y[:, 0] = np.nan
    y[:65, 1] = np.nan
    y[:, 3] *= 40.0  # betas far beyond the ±5 cap: the residuals are the uncapped fit's
    got = ridge_betas(y, X, alpha=alpha, min_obs=30)
    assert np.nanmax(np.abs(got.betas[3])) > 5
    assert_residuals_close(got.residual_variance, reference_ridge_residual_variance(y, X, alpha, 30))
    assert np.isnan(got.residual_variance[:2]).all() and np.isfinite(got.residual_variance[2:]).all()


def test_ridge_residual_variance_zero_variance_and_too_few_degrees_of_freedom():
    X, y = random_market(13, N=3, nan_share=0.0)
    X[:50, 5] = 0.1
    y[50:, 0] = np.nan  # only the constant stretch of regressor 5
    y[:83, 1] = np.nan  # 7 rows = K + 1: no degree of freedom left (min_obs 5 lets the betas through)
    got = ridge_betas(y, X, alpha=1.0, min_obs=5)
    assert got.zero_variance.tolist() == [True, False, False]
    assert np.isnan(got.residual_variance[:2]).all() and np.isfinite(got.betas[1]).all()
    assert_residuals_close(got.residual_variance[2:], reference_ridge_residual_variance(y, X, 1.0, 5)[2:])


# ---------------------------------------------------------------- residual variance on the real prices


@pytest.fixture(scope="module")
def real_closes_and_returns(real_prices_dir):
    """The shared adjusted closes, and their returns computed the pipeline's way (total_returns on the grid)."""
    closes = read_real_closes(real_prices_dir)
    long = closes.stack().rename("close").reset_index()
    long.columns = ["date", "symbol", "close"]
    long["date"] = long["date"].dt.date
    return closes, total_returns(long, sessions_between(closes.index[0], closes.index[-1]))


@pytest.mark.parametrize("date", ["2024-12-31", "2024-06-28", "2023-10-31", "2023-09-15"])
def test_real_prices_residual_variance_matches_statsmodels_and_sklearn(real_closes_and_returns, date):
    closes, returns = real_closes_and_returns
    day = pd.Timestamp(date)
    got = compute_factor_exposures(returns, returns[list(REGRESSOR_ETFS)], day).set_index(["symbol", "factor"])
    rets = closes.pct_change(fill_method=None).loc[:day]  # the reference's own returns
    checked = 0
    for spec in FACTORS:
        window = rets.iloc[-spec.window:]
        y = window.to_numpy()
        if spec.family == "ridge":
            expected = reference_ridge_residual_variance(y, window[list(RIDGE_ETFS)].to_numpy(), RIDGE_ALPHA,
                                                         spec.min_observations)
        elif len(spec.regressors) == 2:
            x = (window[spec.regressors[0]] - window[spec.regressors[1]]).to_numpy()
            expected = reference_ols_mse_resid(y, x, spec.min_observations)
        else:
            expected = reference_ols_mse_resid(y, window[spec.regressors[0]].to_numpy(), spec.min_observations)
        actual = got.xs(spec.name, level="factor")["residual_variance"].reindex(closes.columns).to_numpy()
        assert_residuals_close(actual, expected)
        checked += int(np.isfinite(expected).sum())
    assert checked > (0 if date == "2023-09-15" else 300)
