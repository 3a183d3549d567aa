"""Per-symbol daily metrics on one date: last close, compounded returns, realised volatility."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

RETURN_HORIZONS: tuple[int, ...] = (1, 5, 21, 63, 252)
VOLATILITY_WINDOWS: tuple[int, ...] = (21, 63)
TRADING_DAYS_PER_YEAR = 252
# A volatility needs this share of its window observed: a few missing days barely move it.
MIN_OBSERVED_SHARE = 0.8

METRIC_COLUMNS: tuple[str, ...] = (
    "last_close",
    *(f"return_{k}d" for k in RETURN_HORIZONS),
    *(f"volatility_{k}d" for k in VOLATILITY_WINDOWS),
)


def compounded_returns(returns: np.ndarray, horizon: int) -> np.ndarray:
    """Compounded return of the last `horizon` rows per column.

    returns : ndarray, shape (T, N), the rows ending at the date. Returns (N,): NaN where any of
    those returns is missing or fewer than `horizon` rows exist.
    """
    if returns.shape[0] < horizon:
        return np.full(returns.shape[1], np.nan)
    # prod propagates NaN, which is the policy: no compounding across a missing day.
    return np.prod(1.0 + returns[-horizon:], axis=0) - 1.0


def annualised_volatility(returns: np.ndarray, window: int) -> np.ndarray:
    """Sample std (ddof 1) × √252 of the last `window` rows per column, NaN-aware.

    returns : ndarray, shape (T, N). Returns (N,): NaN where fewer than 80% of `window` (rounded
    up) returns are observed.
    """
    tail = returns[-window:]  # (≤window, N)
    observed = np.isfinite(tail)
    count = observed.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(observed, tail, 0.0).sum(axis=0) / count
        dev = np.where(observed, tail - mean, 0.0)
        var = (dev * dev).sum(axis=0) / (count - 1)
    needed = max(math.ceil(MIN_OBSERVED_SHARE * window), 2)
    return np.where(count >= needed, np.sqrt(var * TRADING_DAYS_PER_YEAR), np.nan)


def last_valid(values: np.ndarray) -> np.ndarray:
    """Last non-NaN value per column of a (T, N) array, NaN where the column has none. (N,)"""
    valid = ~np.isnan(values)
    if values.shape[0] == 0:
        return np.full(values.shape[1], np.nan)
    last = values.shape[0] - 1 - np.argmax(valid[::-1], axis=0)  # (N,)
    picked = values[last, np.arange(values.shape[1])]
    return np.where(valid.any(axis=0), picked, np.nan)


def daily_metrics(closes: pd.DataFrame, returns: pd.DataFrame, date: dt.date | str | pd.Timestamp) -> pd.DataFrame:
    """Metrics of every symbol on `date`, from rows on or before it only.

    Parameters
    ----------
    closes : DataFrame, shape (T, N)
        Closes on the session grid (index DatetimeIndex, columns symbols).
    returns : DataFrame, shape (T, N)
        Daily total returns on the same kind of grid; reindexed to the columns of `closes`.
    date : date-like
        Must be a row of both indexes.

    Returns
    -------
    DataFrame indexed by symbol, columns METRIC_COLUMNS
        last_close: latest close on or before date. return_kd: compounded total return over the
        k sessions ending at date (NaN if any is missing or the history is shorter).
        volatility_kd: annualised sample std of the daily returns in the window.
    """
    ts = pd.Timestamp(date)
    for name, frame in (("closes", closes), ("returns", returns)):
        if ts not in frame.index:
            raise KeyError(f"{ts.date()} is not in the {name} index")
    symbols = closes.columns
    close = closes.loc[:ts].to_numpy(dtype=np.float64)  # (T_c, N)
    ret = returns.reindex(columns=symbols).loc[:ts].to_numpy(dtype=np.float64)  # (T_r, N)

    out = {"last_close": last_valid(close)}
    for k in RETURN_HORIZONS:
        out[f"return_{k}d"] = compounded_returns(ret, k)
    for k in VOLATILITY_WINDOWS:
        out[f"volatility_{k}d"] = annualised_volatility(ret, k)
    return pd.DataFrame(out, index=pd.Index(symbols, name="symbol"), columns=list(METRIC_COLUMNS))
