"""Factor exposures of every symbol on one date: the twelve factors of docs/methodology.md.

One vectorised regression per factor (one joint ridge for the six style factors) over all
symbols, each on the last `window` sessions ending at the date and never a row after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .factors import (
    BETA_CAP,
    FACTORS,
    QUALITY_CAPPED,
    QUALITY_INSUFFICIENT,
    QUALITY_NO_PRICE,
    QUALITY_OK,
    QUALITY_ZERO_VARIANCE,
    RIDGE_ALPHA,
    RIDGE_ETFS,
    FactorSpec,
)
from .regression import OLSResult, RidgeResult, cap_betas, ols_betas_many, ridge_betas

EXPOSURE_COLUMNS: tuple[str, ...] = (
    "symbol",
    "factor",
    "beta",
    "beta_uncapped",
    "capped",
    "alpha",
    "r_squared",
    "std_error",
    "observations",
    "method",
    "window",
    "min_observations",
    "ridge_alpha",
    "beta_cap",
    "quality",
    "residual_variance",
)


def _date_position(index: pd.DatetimeIndex, date: dt.date | str | pd.Timestamp) -> int:
    """Row of `date` in `index`; the window ends there, inclusive."""
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"returns must be indexed by sessions (DatetimeIndex), got {type(index).__name__}")
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise ValueError("the returns index must be increasing and unique")
    ts = pd.Timestamp(date)
    if ts not in index:
        raise KeyError(f"{ts.date()} is not in the returns index (not a session, or no data for it)")
    return int(index.get_loc(ts))


def _regressor(etf: pd.DataFrame, spec: FactorSpec) -> np.ndarray:
    """The OLS regressor of `spec` over the rows of `etf`, shape (T,): an ETF, or long − short."""
    if len(spec.regressors) == 1:
        return etf[spec.regressors[0]].to_numpy(dtype=np.float64)
    if len(spec.regressors) == 2:
        long, short = spec.regressors
        return etf[long].to_numpy(dtype=np.float64) - etf[short].to_numpy(dtype=np.float64)
    raise ValueError(f"an OLS factor takes one regressor or a (long, short) pair, {spec.name} has {spec.regressors}")


def _quality(nobs, min_obs, zero_variance, capped, n: int) -> np.ndarray:
    quality = np.full(n, QUALITY_OK, dtype=object)
    quality[capped] = QUALITY_CAPPED
    quality[zero_variance] = QUALITY_ZERO_VARIANCE
    quality[nobs < min_obs] = QUALITY_INSUFFICIENT
    return quality


def compute_factor_exposures(
    symbol_returns: pd.DataFrame,
    etf_returns: pd.DataFrame,
    date: dt.date | str | pd.Timestamp,
    factors: Sequence[FactorSpec] = FACTORS,
    ridge_alpha: float = RIDGE_ALPHA,
    beta_cap: float = BETA_CAP,
    priced_on_date: pd.Series | None = None,
) -> pd.DataFrame:
    """Every symbol's exposure to every factor on `date`.

    Parameters
    ----------
    symbol_returns : DataFrame, shape (T, N)
        Daily total returns, index = consecutive sessions (DatetimeIndex), columns = symbols.
        The index must be the session grid: a window is a count of rows.
    etf_returns : DataFrame, shape (T', >= 8)
        Daily returns of the regressor ETFs (columns named as in factors.py), reindexed here to
        the sessions of `symbol_returns`; a session it lacks is a missing regressor.
    date : date-like
        A session of the index. Factor f uses the last ``f.window`` rows ending at it, inclusive;
        rows after it are never read (point in time).
    factors : sequence of FactorSpec
        OLS factors regress on one ETF or on a (long, short) daily difference. Ridge factors
        sharing a window and minimum are answered by ONE joint ridge on RIDGE_ETFS, each taking
        the coefficient of its own ETF.
    priced_on_date : bool Series indexed by symbol, optional
        Symbols with False (or absent) get every estimate NaN and quality ``no_price_on_date``.

    Returns
    -------
    DataFrame, N × len(factors) rows (factor-major, symbols in column order)
        Columns EXPOSURE_COLUMNS. ``beta`` is capped at ±beta_cap, ``beta_uncapped`` is not;
        ``std_error`` and ``ridge_alpha`` are NaN for ridge and OLS rows respectively;
        ``residual_variance`` is the regression's RSS / (n − p − 1) (the six ridge rows of a symbol
        share their joint fit's). quality is
        ``insufficient_data`` (observations < min_observations, no estimate), ``zero_variance``
        (a constant regressor, no estimate), ``capped``, or ``ok``.
    """
    factors = tuple(factors)
    end = _date_position(symbol_returns.index, date) + 1
    symbols = symbol_returns.columns
    n_sym = len(symbols)
    y_all = symbol_returns.to_numpy(dtype=np.float64)[:end]  # (T_end, N)
    needed = {etf for f in factors for etf in f.regressors}
    if any(f.method == "ridge" for f in factors):
        needed |= set(RIDGE_ETFS)
    needed = sorted(needed)
    missing = [etf for etf in needed if etf not in etf_returns.columns]
    if missing:
        raise KeyError(f"etf_returns lacks the regressor columns {missing}")
    etf = etf_returns[needed].reindex(symbol_returns.index).iloc[:end]  # (T_end, n_etf)

    # OLS factors sharing a window share the symbols' masked moments: one pass over y per window.
    ols_fits: dict[int, OLSResult] = {}
    ols_groups: dict[tuple[int, int], list[int]] = {}
    for i, spec in enumerate(factors):
        if spec.method == "ols":
            ols_groups.setdefault((spec.window, spec.min_observations), []).append(i)
    for (window, min_obs), members in ols_groups.items():
        start = max(end - window, 0)
        X = np.column_stack([_regressor(etf.iloc[start:], factors[i]) for i in members])  # (W, F)
        ols_fits.update(zip(members, ols_betas_many(y_all[start:], X, min_obs)))

    blocks: list[dict[str, np.ndarray]] = []
    ridge_fits: dict[tuple[int, int], RidgeResult] = {}
    for i, spec in enumerate(factors):
        start = max(end - spec.window, 0)
        y = y_all[start:]  # (W, N)
        if spec.method == "ols":
            fit = ols_fits[i]
            raw, alpha, r2, se, s2 = fit.beta, fit.alpha, fit.r_squared, fit.std_error, fit.residual_variance
            nobs, zero_variance, used_alpha = fit.nobs, fit.zero_variance, np.nan
        elif spec.method == "ridge":
            key = (spec.window, spec.min_observations)
            if key not in ridge_fits:
                X = etf[list(RIDGE_ETFS)].iloc[start:].to_numpy(dtype=np.float64)  # (W, K)
                ridge_fits[key] = ridge_betas(y, X, ridge_alpha, spec.min_observations)
            fit = ridge_fits[key]
            try:
                k = RIDGE_ETFS.index(spec.regressors[0])
            except ValueError:
                raise ValueError(
                    f"ridge factor {spec.name} regresses on {spec.regressors[0]}, not one of {RIDGE_ETFS}"
                ) from None
            raw, alpha, r2, se = fit.betas[:, k], fit.alpha, fit.r_squared, np.full(n_sym, np.nan)
            s2 = fit.residual_variance
            nobs, zero_variance, used_alpha = fit.nobs, fit.zero_variance, float(ridge_alpha)
        else:
            raise ValueError(f"factor {spec.name} has unknown method {spec.method!r}")

        beta, capped = cap_betas(raw, beta_cap)
        blocks.append(
            {
                "beta": beta,
                "beta_uncapped": raw,
                "capped": capped,
                "alpha": alpha,
                "r_squared": r2,
                "std_error": se,
                "residual_variance": s2,
                "observations": nobs,
                "ridge_alpha": np.full(n_sym, used_alpha),
                "quality": _quality(nobs, spec.min_observations, zero_variance, capped, n_sym),
            }
        )

    n_fac = len(factors)
    fields = ("beta", "beta_uncapped", "capped", "alpha", "r_squared", "std_error", "residual_variance", "observations",
              "ridge_alpha", "quality")
    data = {key: np.concatenate([b[key] for b in blocks]) for key in fields} if blocks else {}
    if blocks and priced_on_date is not None:
        priced = priced_on_date.reindex(symbols).fillna(False).astype(bool).to_numpy()  # (N,)
        unpriced = np.tile(~priced, n_fac)
        for key in ("beta", "beta_uncapped", "alpha", "r_squared", "std_error", "residual_variance"):
            data[key][unpriced] = np.nan
        data["capped"][unpriced] = False
        data["quality"][unpriced] = QUALITY_NO_PRICE
    if not blocks:
        return pd.DataFrame({c: [] for c in EXPOSURE_COLUMNS})

    return pd.DataFrame(
        {
            "symbol": np.tile(np.asarray(symbols, dtype=object), n_fac),
            "factor": np.repeat(np.array([f.name for f in factors], dtype=object), n_sym),
            "beta": data["beta"],
            "beta_uncapped": data["beta_uncapped"],
            "capped": data["capped"].astype(bool),
            "alpha": data["alpha"],
            "r_squared": data["r_squared"],
            "std_error": data["std_error"],
            "observations": data["observations"].astype(np.int64),
            "method": np.repeat(np.array([f.method for f in factors], dtype=object), n_sym),
            "window": np.repeat(np.array([f.window for f in factors], dtype=np.int64), n_sym),
            "min_observations": np.repeat(np.array([f.min_observations for f in factors], dtype=np.int64), n_sym),
            "ridge_alpha": data["ridge_alpha"],
            "beta_cap": np.full(n_sym * n_fac, float(beta_cap)),
            "quality": data["quality"],
            "residual_variance": data["residual_variance"],
        },
        columns=list(EXPOSURE_COLUMNS),
    )
