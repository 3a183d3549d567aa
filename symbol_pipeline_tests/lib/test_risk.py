"""The risk decomposition: contributions add up, the factor variance is the EWMA variance of the
model-implied returns, specific variance of one stock, VaR, and the three models' definitions."""

import numpy as np
import pandas as pd
import pytest

from symbol_pipeline.lib import risk, stress
from symbol_pipeline.lib.factors import RIDGE_ETFS


def _factor_returns(seed: int, T: int = 252, K: int = 6, nan_share: float = 0.03) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    market = rng.normal(0, 0.01, (T, 1))
    r = market * rng.uniform(0.6, 1.3, K) + rng.normal(0, 0.004, (T, K))
    r[rng.random((T, K)) < nan_share] = np.nan
    return pd.DataFrame(r, columns=list(RIDGE_ETFS))


def test_models_are_the_three_joint_ones_headline_style():
    assert [m.name for m in risk.RISK_MODELS] == ["market", "rates", "style"]
    assert risk.RISK_MODEL_BY_NAME["market"].factors == ("market_beta",)
    assert risk.RISK_MODEL_BY_NAME["rates"].etfs == ("TLT",)
    style = risk.RISK_MODEL_BY_NAME["style"]
    assert style.etfs == RIDGE_ETFS and style.factors[0] == "ridge_value" and len(style.factors) == 6
    assert risk.HEADLINE_MODEL == "style"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contributions_sum_to_factor_variance_and_equal_ewma_of_model_returns(seed):
    returns = _factor_returns(seed)
    model = risk.RISK_MODEL_BY_NAME["style"]
    cov = risk.model_covariance(returns, model)
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.05, 0.05, (4, 30))  # 4 portfolios, 30 symbols, some short
    betas = rng.normal(0.2, 0.3, (30, 6))
    result = risk.decompose(weights, betas, rng.uniform(1e-5, 4e-4, 30), cov, np.full(4, 1e6))
    np.testing.assert_allclose(result.contributions.sum(axis=1), result.factor_variance, rtol=1e-12)
    # Directly: the portfolio's model-implied return b·f_t on the sessions where every factor has a
    # return, its zero-mean EWMA variance with λ = 0.94 weights renormalised over those sessions.
    kept = returns.dropna().to_numpy()
    lam_weights = 0.94 ** np.arange(len(kept) - 1, -1, -1)
    lam_weights /= lam_weights.sum()
    implied = kept @ (weights @ betas).T  # (T_kept, P)
    np.testing.assert_allclose(result.factor_variance, lam_weights @ implied**2, rtol=1e-12)
    np.testing.assert_allclose(result.total_variance, result.factor_variance + result.specific_variance)


def test_covariance_is_the_stress_estimator_on_the_models_own_sessions():
    returns = _factor_returns(3).assign(SPY=np.nan, TLT=0.001)  # the market ETF missing everywhere
    style = risk.model_covariance(returns, risk.RISK_MODEL_BY_NAME["style"])  # SPY's gaps do not matter
    np.testing.assert_array_equal(style, stress.ewma_covariance(returns[list(RIDGE_ETFS)].to_numpy()))
    with pytest.raises(ValueError, match="sessions"):
        risk.model_covariance(returns, risk.RISK_MODEL_BY_NAME["market"])
    with pytest.raises(ValueError, match="60 needed"):
        risk.model_covariance(returns.iloc[-59:], risk.RISK_MODEL_BY_NAME["rates"])


def test_one_stock_specific_variance_is_weight_squared_times_residual_variance():
    cov = np.array([[1.5e-4]])
    result = risk.decompose(np.array([[0.4]]), np.array([[1.2]]), np.array([3e-4]), cov, np.array([2e6]))
    assert result.specific_variance[0] == pytest.approx(0.4**2 * 3e-4, rel=1e-14)
    assert result.factor_variance[0] == pytest.approx((0.4 * 1.2) ** 2 * 1.5e-4, rel=1e-14)
    total = (0.4 * 1.2) ** 2 * 1.5e-4 + 0.16 * 3e-4
    assert result.volatility_annualised[0] == pytest.approx(np.sqrt(252 * total))
    assert result.var_95_1d[0] == pytest.approx(1.6449 * np.sqrt(total) * 2e6)
    assert result.var_99_1d[0] == pytest.approx(2.3263 * np.sqrt(total) * 2e6)
    assert result.var_95_1d[0] > 0 and result.coverage[0] == 1.0


def test_short_book_has_the_same_risk_and_positive_var():
    cov = np.array([[1e-4, 2e-5], [2e-5, 5e-5]])
    w, b, s2 = np.array([[0.6, 0.5]]), np.array([[1.0, 0.2], [0.3, 0.9]]), np.array([2e-4, 1e-4])
    long, short = risk.decompose(w, b, s2, cov, np.array([1e5])), risk.decompose(-w, b, s2, cov, np.array([1e5]))
    assert short.total_variance[0] == pytest.approx(long.total_variance[0], rel=1e-14)
    assert short.var_99_1d[0] == pytest.approx(long.var_99_1d[0]) and short.var_99_1d[0] > 0
    np.testing.assert_allclose(short.exposures, -long.exposures)


def test_symbols_without_betas_drop_out_and_coverage_says_so():
    cov = np.array([[1e-4]])
    weights = np.array([[0.3, -0.1, 0.6]])
    betas = np.array([[1.0], [np.nan], [0.5]])  # the second symbol has no beta
    s2 = np.array([1e-4, 5e-4, np.nan])  # the third has a beta but no residual variance
    r = risk.decompose(weights, betas, s2, cov, np.array([1e6]))
    assert r.exposures[0, 0] == pytest.approx(0.3 + 0.3)  # as in the portfolio's exposures: NaN beta counts 0
    assert r.specific_variance[0] == pytest.approx(0.09 * 1e-4)
    assert r.coverage[0] == pytest.approx(0.3 / 1.0)
    empty = risk.decompose(np.zeros((1, 0)), np.zeros((0, 1)), np.zeros(0), cov, np.array([1e6]))
    assert empty.total_variance[0] == 0.0 and np.isnan(empty.coverage[0])
