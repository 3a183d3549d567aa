"""Reference implementations the kernels are held to: statsmodels and scikit-learn, symbol by symbol."""

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from symbol_pipeline.lib.factors import BETA_CAP, FACTORS, RIDGE_ALPHA, RIDGE_ETFS


def read_real_closes(directory) -> pd.DataFrame:
    """Adjusted closes of the shared CSVs, wide: sessions × symbols."""
    series = {
        path.stem: pd.read_csv(path, parse_dates=["Date"], index_col="Date")["Close"]
        for path in sorted(directory.glob("*.csv"))
    }
    return pd.DataFrame(series).sort_index()


def reference_exposures(closes: pd.DataFrame, date) -> dict[tuple[str, str], tuple]:
    """statsmodels / scikit-learn fitted symbol by symbol on pct_change of the closes.

    Maps (symbol, factor) to (beta capped, beta uncapped, alpha, r2, se, nobs), NaNs where the
    window has fewer rows than the minimum.
    """
    rets = closes.pct_change(fill_method=None).loc[:date]
    out = {}
    for spec in FACTORS:
        window = rets.iloc[-spec.window :]
        if spec.family == "ridge":
            X = window[list(RIDGE_ETFS)].to_numpy()
        elif len(spec.regressors) == 2:
            x = (window[spec.regressors[0]] - window[spec.regressors[1]]).to_numpy()
        else:
            x = window[spec.regressors[0]].to_numpy()
        for symbol in closes.columns:
            y = window[symbol].to_numpy()
            if spec.family == "ridge":
                rows = np.isfinite(y) & np.isfinite(X).all(axis=1)
            else:
                rows = np.isfinite(y) & np.isfinite(x)
            nobs = int(rows.sum())
            if nobs < spec.min_observations:
                out[symbol, spec.name] = (np.nan,) * 5 + (nobs,)
                continue
            if spec.family == "ridge":
                scaler = StandardScaler().fit(X[rows])
                Z = scaler.transform(X[rows])
                model = Ridge(alpha=RIDGE_ALPHA).fit(Z, y[rows])
                coefs = model.coef_ / scaler.scale_
                k = RIDGE_ETFS.index(spec.regressors[0])
                raw = coefs[k]
                alpha = model.intercept_ - scaler.mean_ @ coefs
                r2, se = model.score(Z, y[rows]), np.nan
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = sm.OLS(y[rows], sm.add_constant(x[rows])).fit()
                alpha, raw = fit.params
                r2, se = fit.rsquared, fit.bse[1]
            out[symbol, spec.name] = (float(np.clip(raw, -BETA_CAP, BETA_CAP)), raw, alpha, r2, se, nobs)
    return out
