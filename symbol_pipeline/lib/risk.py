"""Risk decomposition (docs/methodology.md, "Risk decomposition"): one factor model at a time. Pure numpy.

For model m with factor returns f_t (its ETFs' daily returns) and a portfolio's exposures b
(its portfolio betas to the model's factors, fractions of equity):

    factor variance     V_f = bᵀ Σ b,  contribution c_k = b_k (Σ b)_k,  Σ_k c_k = V_f
    specific variance   V_s = Σ_i w_i² s_i²   (w_i weight of symbol i, s_i² its residual variance)
    total               V = V_f + V_s, daily, a fraction of equity squared
    volatility          √(252 V);  one-day VaR  z √V × equity, a positive loss, no mean term

Σ is the stress tests' estimator (`stress.ewma_covariance`: zero-mean EWMA, λ = 0.94, over the
252 sessions ending at the date, sessions where all the model's factors have a return, at least
60) on the model's own factors. The three joint models are market (SPY), rates (TLT) and style
(the six ridge ETFs); the four spreads are separate regressions and get no decomposition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from symbol_pipeline.lib import stress
from symbol_pipeline.lib.factors import FACTORS, FAMILY_MARKET, FAMILY_RATES, FAMILY_RIDGE

Z_95 = 1.6449
Z_99 = 2.3263
TRADING_DAYS = 252
HEADLINE_MODEL = "style"


@dataclass(frozen=True)
class RiskModel:
    """A joint factor model: its factors (stored beta names) and their ETFs, in the same order."""

    name: str
    factors: tuple[str, ...]
    etfs: tuple[str, ...]


def _models() -> tuple[RiskModel, ...]:
    out = []
    for name, family in (("market", FAMILY_MARKET), ("rates", FAMILY_RATES), ("style", FAMILY_RIDGE)):
        specs = [f for f in FACTORS if f.family == family]
        out.append(RiskModel(name, tuple(f.name for f in specs), tuple(f.regressors[0] for f in specs)))
    return tuple(out)


RISK_MODELS: tuple[RiskModel, ...] = _models()
RISK_MODEL_BY_NAME: dict[str, RiskModel] = {m.name: m for m in RISK_MODELS}


@dataclass(frozen=True)
class RiskArrays:
    """One model's decomposition for P portfolios.

    exposures, contributions : (P, K) fractions of equity, fractions of equity squared
    factor_variance, specific_variance, total_variance : (P,) daily, fractions of equity squared
    volatility_annualised : (P,) √(252 V);  var_95_1d, var_99_1d : (P,) USD, positive = loss
    coverage : (P,) share of gross exposure in symbols with every factor's beta and a residual variance
    """

    exposures: np.ndarray
    contributions: np.ndarray
    factor_variance: np.ndarray
    specific_variance: np.ndarray
    total_variance: np.ndarray
    volatility_annualised: np.ndarray
    var_95_1d: np.ndarray
    var_99_1d: np.ndarray
    coverage: np.ndarray


def model_covariance(etf_returns: pd.DataFrame, model: RiskModel) -> np.ndarray:
    """Σ of the model's factors, shape (K, K), from daily ETF returns (T, ≥ K), newest row last.

    The stress tests' estimator on the model's own columns: a session counts when every one of
    them has a return. Raises ValueError with fewer than `stress.MIN_COVARIANCE_SESSIONS`.
    """
    return stress.ewma_covariance(etf_returns.loc[:, list(model.etfs)].to_numpy(dtype=float))


def factor_contributions(exposures: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """c_k = b_k (Σ b)_k, shape (P, K), for exposures (P, K) and Σ (K, K); rows sum to bᵀ Σ b."""
    b = np.atleast_2d(np.asarray(exposures, dtype=float))
    return b * (b @ np.asarray(cov, dtype=float))


def specific_variance(weights: np.ndarray, residual_variance: np.ndarray) -> np.ndarray:
    """Σ_i w_i² s_i², shape (P,), for weights (P, S) and residual variances (S,); NaN s² drops out."""
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    s2 = np.asarray(residual_variance, dtype=float)
    return (w * w) @ np.where(np.isfinite(s2), s2, 0.0)


def value_at_risk(total_variance: np.ndarray, equity: np.ndarray, z: float) -> np.ndarray:
    """One-day parametric VaR in USD, a positive loss: z √V × equity (no mean term)."""
    return z * np.sqrt(np.asarray(total_variance, dtype=float)) * np.asarray(equity, dtype=float)


def decompose(weights: np.ndarray, betas: np.ndarray, residual_variance: np.ndarray, cov: np.ndarray,
              equity: np.ndarray) -> RiskArrays:
    """One model's risk for P portfolios over S symbols.

    weights : (P, S) signed market value / equity, positions summed per symbol
    betas : (S, K) the symbols' betas to the model's factors, NaN where none (counts as 0 in b)
    residual_variance : (S,) s_i² of each symbol's regression in the model, NaN where none
    cov : (K, K) the factor covariance;  equity : (P,) USD
    A symbol without every beta, or without a residual variance, adds nothing to V_s and lowers
    the coverage; its betas still count in b, as they do in the portfolio's exposures.
    """
    w = np.atleast_2d(np.asarray(weights, dtype=float))  # (P, S)
    betas = np.asarray(betas, dtype=float)  # (S, K)
    betas = betas[:, None] if betas.ndim == 1 else betas
    s2 = np.asarray(residual_variance, dtype=float)  # (S,)
    equity = np.broadcast_to(np.asarray(equity, dtype=float), (w.shape[0],))
    covered = np.isfinite(betas).all(axis=1) & np.isfinite(s2)  # (S,)
    exposures = w @ np.nan_to_num(betas)  # (P, K)
    contributions = factor_contributions(exposures, cov)  # (P, K)
    v_f = contributions.sum(axis=1)
    v_s = specific_variance(w[:, covered], s2[covered])
    total = v_f + v_s
    gross = np.abs(w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = np.where(gross > 0, np.abs(w[:, covered]).sum(axis=1) / gross, np.nan)
    return RiskArrays(
        exposures=exposures, contributions=contributions, factor_variance=v_f, specific_variance=v_s,
        total_variance=total, volatility_annualised=np.sqrt(TRADING_DAYS * total),
        var_95_1d=value_at_risk(total, equity, Z_95), var_99_1d=value_at_risk(total, equity, Z_99),
        coverage=coverage,
    )
