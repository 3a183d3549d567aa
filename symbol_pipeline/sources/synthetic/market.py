"""The shape of the synthetic market: the factor ETFs, the ticker catalogue, the calendar."""

from __future__ import annotations

import datetime as dt
import re
from functools import cache

import numpy as np
import pandas as pd

from symbol_pipeline.lib import sessions
from symbol_pipeline.lib.factors import MARKET_ETF, RATES_ETF, REGRESSOR_ETFS, RIDGE_ETFS

# --- the factor ETFs -------------------------------------------------------------------------

ETFS: tuple[str, ...] = REGRESSOR_ETFS  # SPY TLT VTV VUG MTUM QUAL IWM USMV, in this order
_ANNUAL_VOL = np.array([0.17, 0.15, 0.16, 0.20, 0.18, 0.16, 0.22, 0.12])
_ANNUAL_DRIFT = np.array([0.08, 0.02, 0.07, 0.09, 0.09, 0.08, 0.07, 0.07])
# Correlations of daily returns, rows/columns in ETFS order. Equities move together (the style
# ETFs all carry the market), long Treasuries are mildly negatively correlated with them.
_CORRELATION = np.array(
    [
        # SPY   TLT   VTV   VUG   MTUM  QUAL  IWM   USMV
        [1.00, -0.25, 0.95, 0.96, 0.90, 0.97, 0.85, 0.88],  # SPY
        [-0.25, 1.00, -0.28, -0.18, -0.15, -0.22, -0.25, -0.05],  # TLT
        [0.95, -0.28, 1.00, 0.85, 0.80, 0.92, 0.86, 0.87],  # VTV
        [0.96, -0.18, 0.85, 1.00, 0.90, 0.93, 0.80, 0.80],  # VUG
        [0.90, -0.15, 0.80, 0.90, 1.00, 0.87, 0.75, 0.80],  # MTUM
        [0.97, -0.22, 0.92, 0.93, 0.87, 1.00, 0.82, 0.88],  # QUAL
        [0.85, -0.25, 0.86, 0.80, 0.75, 0.82, 1.00, 0.72],  # IWM
        [0.88, -0.05, 0.87, 0.80, 0.80, 0.88, 0.72, 1.00],  # USMV
    ]
)
TRADING_DAYS = 252
# Daily covariance, shape (8, 8), in ETFS order.
ETF_DAILY_COVARIANCE = np.outer(_ANNUAL_VOL, _ANNUAL_VOL) * _CORRELATION / TRADING_DAYS
ETF_DAILY_MEAN = _ANNUAL_DRIFT / TRADING_DAYS
ETF_ANNUAL_YIELD = np.array([0.014, 0.035, 0.024, 0.006, 0.010, 0.013, 0.012, 0.018])
ETF_ANCHOR_PRICE = np.array([470.0, 145.0, 145.0, 330.0, 185.0, 150.0, 225.0, 80.0])

IDX_SPY = ETFS.index(MARKET_ETF)
IDX_TLT = ETFS.index(RATES_ETF)
IDX_STYLE = np.array([ETFS.index(e) for e in RIDGE_ETFS])

# --- the catalogue of familiar tickers, with the kind of stock each behaves like ----------------

CORE, DEFENSIVE, HIGH_BETA = "core", "defensive", "high_beta"
CATALOGUE: dict[str, str] = {
    **dict.fromkeys(
        "AAPL MSFT AMZN GOOGL META JPM JNJ XOM PG HD KO PEP WMT BAC CSCO INTC T VZ DIS MCD IBM CAT GE "
        "UNH V MA CVX MRK ABBV COST ORCL CRM ADBE NFLX BRK-B GS LLY PFE HON".split(),
        CORE,
    ),
    **dict.fromkeys("NEE DUK SO D AEP XEL".split(), DEFENSIVE),
    **dict.fromkeys("NVDA TSLA AMD AVGO SHOP".split(), HIGH_BETA),
}

# --- shape of the synthetic universe ----------------------------------------------------------

UNIVERSE_PREFIX = "SYN"
UNIVERSE_RE = re.compile(rf"^{UNIVERSE_PREFIX}(\d{{4,}})$")
# Prices are cumulated from this session in both directions, so a fetch only generates the
# sessions between it and the requested window (recent windows are the common case).
ANCHOR_DATE = "2022-01-03"
DIVIDEND_PERIOD = 63  # sessions between quarterly dividends
P_LATE_LISTING = 0.04
P_DELISTING = 0.03
P_GAPPY = 0.03
GAP_RATE = 0.01  # chance that a gappy symbol's row is missing on a given session
SPLIT_RATE = 1.0 / 1500.0  # per session, for the ~20% of names that split at all
LATE_LISTING_RANGE = ("2015-01-02", "2026-06-30")
DELISTING_RANGE = ("2019-01-02", "2026-06-30")


def universe_symbol(i: int) -> str:
    """The i-th name of the synthetic universe, 1-based: SYN0001, SYN0002, ..."""
    return f"{UNIVERSE_PREFIX}{i:04d}"


# --- the calendar: position in it is the global session index ------------------------------------


@cache
def calendar_index() -> pd.DatetimeIndex:
    """Every NYSE session the calendar knows, tz-naive; position = global session index."""
    return sessions.all_sessions()


@cache
def calendar_dates() -> np.ndarray:
    """`calendar_index` as datetime.date objects, shape (T_calendar,)."""
    return np.array([t.date() for t in calendar_index()], dtype=object)


def session_position(day: str | dt.date, side: str = "left") -> int:
    return int(calendar_index().searchsorted(pd.Timestamp(day), side=side))


def session_window(start: dt.date | str | None, end: dt.date | str | None) -> tuple[int, int]:
    """Global session indices [w0, w1] of sessions in [start, end], clipped to the calendar."""
    w0 = 0 if start is None else session_position(start, "left")
    w1 = len(calendar_index()) - 1 if end is None else session_position(end, "right") - 1
    return w0, w1
