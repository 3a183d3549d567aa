"""The true answers a test can hold the pipeline to: population betas and listing facts.

What a test estimating betas should expect: OLS betas over a window scatter around
`population_betas` with their usual standard errors (the part of a stock's return not explained
by the regressor is independent of it, all returns being jointly normal); ridge betas (alpha=1 on
standardised regressors, docs/methodology.md) are in addition shrunk slightly towards zero, and the six
style ETFs are so collinear that their individual coefficients carry large standard errors.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from symbol_pipeline.lib.factors import FACTOR_NAMES, RIDGE_ETFS, RIDGE_FACTORS, SPREAD_FACTORS
from symbol_pipeline.sources.synthetic.market import (
    ETF_DAILY_COVARIANCE,
    ETFS,
    IDX_SPY,
    IDX_STYLE,
    IDX_TLT,
    calendar_dates,
)


@dataclass(frozen=True)
class ListingInfo:
    """When a symbol trades. `last_session` None: still trading at the end of the calendar."""

    symbol: str
    first_session: dt.date
    last_session: dt.date | None
    gap_rate: float  # chance of an isolated missing row on any session (0 for most symbols)

    @property
    def listed_late(self) -> bool:
        return self.first_session > calendar_dates()[0]

    @property
    def delisted(self) -> bool:
        return self.last_session is not None

    @property
    def has_gaps(self) -> bool:
        return self.gap_rate > 0


def population_betas(loadings: pd.DataFrame) -> pd.DataFrame:
    """Population betas implied by the generating covariance; columns are FACTOR_NAMES.

    loadings: index symbols, columns ETFS, the weights of each total return on the ETF returns.
    market_beta = Cov(r, SPY) / Var(SPY); ir_beta likewise with TLT; spread_j =
    Cov(r, L - S) / Var(L - S); ridge_k = the population coefficients of r regressed on the
    six style ETFs jointly, Sigma_xx^-1 Sigma_xy (no shrinkage: estimated ridge betas with
    alpha=1 are shrunk slightly towards 0, and every estimate carries sampling error ~ its se).
    """
    sigma = ETF_DAILY_COVARIANCE
    cov_r = loadings[list(ETFS)].to_numpy() @ sigma  # (N, 8): Cov(r_i, ETF_k)
    out = pd.DataFrame(index=loadings.index, columns=list(FACTOR_NAMES), dtype="float64")
    out["market_beta"] = cov_r[:, IDX_SPY] / sigma[IDX_SPY, IDX_SPY]
    out["ir_beta"] = cov_r[:, IDX_TLT] / sigma[IDX_TLT, IDX_TLT]
    ridge = np.linalg.solve(sigma[np.ix_(IDX_STYLE, IDX_STYLE)], cov_r[:, IDX_STYLE].T).T  # (N, 6)
    for j, spec in enumerate(RIDGE_FACTORS):
        assert spec.regressors == (RIDGE_ETFS[j],)
        out[spec.name] = ridge[:, j]
    for spec in SPREAD_FACTORS:
        a, b = (ETFS.index(e) for e in spec.regressors)
        var = sigma[a, a] + sigma[b, b] - 2 * sigma[a, b]
        out[spec.name] = (cov_r[:, a] - cov_r[:, b]) / var
    return out
