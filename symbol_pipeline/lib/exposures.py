"""Portfolio factor exposures: a sparse (portfolios × symbols) matrix times the symbol betas.

Pure numpy/scipy. Definitions in docs/methodology.md, "Portfolio aggregation":
weight = signed market value / equity; portfolio beta = Σ weight × symbol beta;
coverage = share of gross exposure whose symbol has a beta (per factor).
A symbol without a beta contributes nothing to the beta and lowers coverage; callers name it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class ExposureArrays:
    """Results for P portfolios and F factors. Rows of invalid portfolios are NaN.

    beta, dollar_exposure, coverage : shape (P, F)
    gross_exposure, net_exposure    : shape (P,), dollars (Σ|mv| and Σ mv)
    valid                           : shape (P,), False where equity <= 0 (no weights exist)
    """

    beta: np.ndarray
    dollar_exposure: np.ndarray
    coverage: np.ndarray
    gross_exposure: np.ndarray
    net_exposure: np.ndarray
    valid: np.ndarray


def market_value_matrix(
    portfolio_index: np.ndarray, symbol_index: np.ndarray, market_value: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """CSR (P, S) of signed market values; duplicate (portfolio, symbol) entries are summed.

    portfolio_index, symbol_index, market_value : shape (K,), one entry per position.
    """
    return sp.csr_matrix(
        (np.asarray(market_value, dtype=float), (np.asarray(portfolio_index), np.asarray(symbol_index))),
        shape=shape,
    )


def aggregate_exposures(market_values: sp.csr_matrix, betas: np.ndarray, equity: np.ndarray) -> ExposureArrays:
    """Exposures of every portfolio at once.

    market_values : CSR shape (P, S), signed dollars (shorts negative)
    betas         : shape (S, F), NaN where the symbol has no beta for the factor
    equity        : shape (P,), dollars; rows with equity <= 0 (or NaN) come back invalid (NaN)
    """
    equity = np.asarray(equity, dtype=float)
    betas = np.asarray(betas, dtype=float)
    has_beta = ~np.isnan(betas)  # (S, F)
    # Dollar betas first: one sparse product over all portfolios, then scale by equity.
    dollar = np.asarray(market_values @ np.where(has_beta, betas, 0.0))  # (P, F)
    absolute = abs(market_values)
    gross = np.asarray(absolute.sum(axis=1)).ravel()  # (P,)
    net = np.asarray(market_values.sum(axis=1)).ravel()  # (P,)
    covered = np.asarray(absolute @ has_beta.astype(float))  # (P, F)
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = np.where(gross[:, None] > 0, covered / gross[:, None], np.nan)
        valid = np.isfinite(equity) & (equity > 0)
        beta = np.where(valid[:, None], dollar / np.where(valid, equity, 1.0)[:, None], np.nan)
    # Σ w β × equity is Σ mv β: the dollar exposure needs no division, but only valid rows report it.
    dollar = np.where(valid[:, None], dollar, np.nan)
    return ExposureArrays(
        beta=beta, dollar_exposure=dollar, coverage=coverage, gross_exposure=gross, net_exposure=net, valid=valid
    )
