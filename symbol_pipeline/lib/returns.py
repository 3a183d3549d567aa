"""Daily total returns on the NYSE session grid (docs/methodology.md, "Sessions and returns").

The wrappers pivot a long price frame (one row per symbol and date) onto a fixed session grid
with integer indexing instead of ``DataFrame.pivot``: 10,000 symbols × 181 sessions is 1.8
million rows, and the grid must keep sessions nobody traded (as NaN) so that no return spans a
gap. The kernel then works on ``(T, N)`` arrays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from symbol_pipeline.lib.sessions import previous_session, sessions_between

# A one-day total return beyond this is taken for a data error (a missing split adjustment, say).
ABSURD_RETURN = 0.5

# Columns a source may leave out: an adjusted-close source has no corporate actions.
_DEFAULTS = {"dividend": 0.0, "split_ratio": 1.0}


def total_returns_array(close: np.ndarray, dividend: np.ndarray, split_ratio: np.ndarray) -> np.ndarray:
    """Total return of each session from the previous one.

    ``r_t = (close_t + dividend_t) * split_ratio_t / close_{t-1} - 1``

    Parameters
    ----------
    close : ndarray, shape (T, N)
        Raw closes on a session grid; NaN where the symbol has no close.
    dividend : ndarray, shape (T, N)
        Cash dividend per old share going ex on t; NaN is read as 0.
    split_ratio : ndarray, shape (T, N)
        New shares per old share effective on t; NaN is read as 1.

    Returns
    -------
    ndarray, shape (T, N), float64
        Row 0 is NaN. NaN wherever close_t or close_{t-1} is NaN, so a missing close makes both
        returns touching it NaN and no return spans a gap; NaN too where close_{t-1} <= 0, a
        price no return can be computed from.
    """
    close = np.asarray(close, dtype=np.float64)
    dividend = np.nan_to_num(np.asarray(dividend, dtype=np.float64), nan=0.0)
    split_ratio = np.asarray(split_ratio, dtype=np.float64)
    split_ratio = np.where(np.isnan(split_ratio), 1.0, split_ratio)
    if not (close.shape == dividend.shape == split_ratio.shape) or close.ndim != 2:
        raise ValueError(
            f"close, dividend and split_ratio must be (T, N) of one shape, got "
            f"{close.shape}, {dividend.shape}, {split_ratio.shape}"
        )
    out = np.full(close.shape, np.nan)
    previous = close[:-1]  # (T-1, N)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (close[1:] + dividend[1:]) * split_ratio[1:] / previous - 1.0
    out[1:] = np.where(previous > 0, r, np.nan)
    return out


def _grid_positions(prices: pd.DataFrame, sessions: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Row (session) and column (symbol) of every price row; row -1 for dates off the grid."""
    # Factorising first converts a few hundred distinct dates instead of 1.8 million objects.
    date_codes, dates = pd.factorize(prices["date"])
    date_rows = sessions.get_indexer(pd.DatetimeIndex(pd.to_datetime(dates)).normalize())
    rows = date_rows[date_codes] if len(date_codes) else np.empty(0, dtype=np.intp)
    rows = np.where(date_codes < 0, -1, rows)
    symbol_codes, symbols = pd.factorize(prices["symbol"], sort=True)
    if (symbol_codes < 0).any():
        raise ValueError("prices has rows without a symbol")
    return rows, symbol_codes, pd.Index(symbols, name="symbol")


def _session_index(sessions: Sequence | pd.DatetimeIndex) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(sessions)
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise ValueError("sessions must be increasing and unique")
    return index.rename("date")


def _wide_arrays(
    prices: pd.DataFrame, sessions: pd.DatetimeIndex, columns: Sequence[str]
) -> tuple[dict[str, np.ndarray], pd.Index]:
    """Each of `columns` as a (T, N) float64 array on the grid sessions × sorted symbols."""
    rows, cols, symbols = _grid_positions(prices, sessions)
    on_grid = rows >= 0
    rows, cols = rows[on_grid], cols[on_grid]
    shape = (len(sessions), len(symbols))
    flat = rows * shape[1] + cols
    if len(flat) and np.bincount(flat, minlength=shape[0] * shape[1]).max() > 1:
        raise ValueError("prices has more than one row for some (symbol, date)")
    arrays = {}
    for name in columns:
        if name in prices.columns:
            values = prices[name].to_numpy(dtype=np.float64, na_value=np.nan)[on_grid]
            grid = np.full(shape, np.nan)
            grid.reshape(-1)[flat] = values
        else:
            grid = np.full(shape, _DEFAULTS[name])
        arrays[name] = grid
    return arrays, symbols


def closes_wide(prices: pd.DataFrame, sessions: Sequence | pd.DatetimeIndex) -> pd.DataFrame:
    """Closes on the session grid.

    Parameters
    ----------
    prices : DataFrame
        Long: columns ``symbol``, ``date`` (date or Timestamp), ``close``; others ignored.
    sessions : DatetimeIndex, length T
        The grid. Dates not in it are dropped; sessions without a row are NaN.

    Returns
    -------
    DataFrame, shape (T, N)
        index = sessions, columns = the symbols of `prices`, sorted.
    """
    index = _session_index(sessions)
    arrays, symbols = _wide_arrays(prices, index, ["close"])
    return pd.DataFrame(arrays["close"], index=index, columns=symbols)


def total_returns(prices: pd.DataFrame, sessions: Sequence | pd.DatetimeIndex) -> pd.DataFrame:
    """Daily total returns on the session grid, see `total_returns_array`.

    Parameters
    ----------
    prices : DataFrame
        Long: columns ``symbol``, ``date``, ``close``, ``dividend``, ``split_ratio`` (a source of
        adjusted closes may omit the last two: read as 0 and 1); other columns ignored. At most
        one row per (symbol, date).
    sessions : DatetimeIndex, length T
        The grid. Dates not in it are dropped; sessions without a row are NaN, which makes the
        returns on both sides of them NaN. The first session's return is NaN: pass one session
        more than the returns you need.

    Returns
    -------
    DataFrame, shape (T, N)
        index = sessions, columns = the symbols of `prices`, sorted.
    """
    index = _session_index(sessions)
    arrays, symbols = _wide_arrays(prices, index, ["close", "dividend", "split_ratio"])
    values = total_returns_array(arrays["close"], arrays["dividend"], arrays["split_ratio"])
    return pd.DataFrame(values, index=index, columns=symbols)


def price_anomalies(prices: pd.DataFrame, symbols: Sequence[str], dates: Sequence[dt.date]) -> dict[str, list[str]]:
    """What looks wrong in the prices of a run's `symbols` on its `dates`, each a sorted list of symbols.

    Parameters
    ----------
    prices : DataFrame
        Long: ``symbol``, ``date`` (Timestamp), ``close``, ``dividend``, ``split_ratio``, from the
        session before min(dates) to max(dates), so that the first date has a return.
    symbols, dates
        The run's symbols and sessions.

    Returns
    -------
    dict
        ``non_positive``: a close at or below zero on one of the dates; ``repeated``: a close equal
        to the previous session's; ``missing``: no row on one of the dates; ``absurd``: a total
        return beyond ±ABSURD_RETURN.
    """
    wanted = pd.DatetimeIndex(pd.to_datetime(list(dates)))
    grid = sessions_between(previous_session(min(dates)), max(dates))
    returns = total_returns(prices, grid).loc[wanted]  # (len(dates), N)
    closes = closes_wide(prices, grid)
    repeated = (closes.diff() == 0).loc[wanted]
    on_dates = prices[pd.to_datetime(prices["date"]).isin(wanted)]
    have = pd.MultiIndex.from_arrays([on_dates["symbol"], pd.to_datetime(on_dates["date"])])
    every = pd.MultiIndex.from_product([list(symbols), wanted])
    absurd = returns.abs() > ABSURD_RETURN
    return {
        "non_positive": sorted(on_dates.loc[on_dates["close"] <= 0, "symbol"].unique()),
        "repeated": sorted(repeated.columns[repeated.any(axis=0)].tolist()),
        "missing": sorted(set(every[~every.isin(have)].get_level_values(0))),
        "absurd": sorted(absurd.columns[absurd.any(axis=0)].tolist()),
    }
