"""Per-symbol generating parameters: a function of (seed, symbol) alone, vectorised over symbols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from symbol_pipeline.lib.factors import RIDGE_ETFS
from symbol_pipeline.sources.synthetic.generator import S_PARAM, symbol_key, uniform
from symbol_pipeline.sources.synthetic.market import (
    CATALOGUE,
    CORE,
    DEFENSIVE,
    DELISTING_RANGE,
    DIVIDEND_PERIOD,
    ETF_ANCHOR_PRICE,
    ETF_ANNUAL_YIELD,
    ETF_DAILY_COVARIANCE,
    ETFS,
    GAP_RATE,
    HIGH_BETA,
    IDX_SPY,
    IDX_STYLE,
    IDX_TLT,
    LATE_LISTING_RANGE,
    P_DELISTING,
    P_GAPPY,
    P_LATE_LISTING,
    SPLIT_RATE,
    TRADING_DAYS,
    calendar_index,
    session_position,
)


@dataclass
class SymbolParameters:
    """Per-symbol generating parameters, arrays of length N unless noted."""

    symbols: list[str]
    keys: np.ndarray  # uint64
    category: np.ndarray  # object
    loadings: np.ndarray  # (N, 8) weights on the ETF returns
    idio_sd: np.ndarray
    dividend_yield: np.ndarray  # per payment, 0 for non-payers
    dividend_phase: np.ndarray  # int: session index mod DIVIDEND_PERIOD of payments
    split_rate: np.ndarray
    gap_rate: np.ndarray
    first: np.ndarray  # int: global session index of the first row
    last: np.ndarray  # int: global session index of the last row
    anchor_price: np.ndarray
    volume_base: np.ndarray


def symbol_parameters(seed: int, symbols: Sequence[str]) -> SymbolParameters:
    """Generating parameters of known `symbols`; each symbol's depend only on (seed, symbol)."""
    n = len(symbols)
    keys = np.array([symbol_key(seed, s) for s in symbols], dtype=np.uint64)
    u = uniform(keys, S_PARAM, np.arange(32, dtype=np.uint64))  # (N, 32)
    n_cal = len(calendar_index())

    is_etf = np.array([s in ETFS for s in symbols], dtype=bool)
    is_cat = np.array([s in CATALOGUE for s in symbols], dtype=bool)
    is_uni = ~is_etf & ~is_cat

    category = np.where(u[:, 0] < 0.75, CORE, np.where(u[:, 0] < 0.87, DEFENSIVE, HIGH_BETA)).astype(object)
    for i in np.flatnonzero(is_cat):
        category[i] = CATALOGUE[symbols[i]]
    defensive = category == DEFENSIVE
    high = category == HIGH_BETA

    # Market beta the stock is built to have, by kind.
    beta = np.where(defensive, 0.3 + 0.35 * u[:, 1], np.where(high, 1.5 + 0.7 * u[:, 1], 0.7 + 0.6 * u[:, 1]))
    # Mix over SPY and the six style ETFs: Dirichlet-like weights, tilted by kind.
    tilt = np.ones((n, 7))
    tilt[:, 0] = 2.0  # SPY
    style_cols = {e: 1 + i for i, e in enumerate(RIDGE_ETFS)}
    tilt[defensive, style_cols["USMV"]] = 4.0
    tilt[defensive, style_cols["QUAL"]] = 2.0
    for e in ("VUG", "MTUM", "IWM"):
        tilt[high, style_cols[e]] = 2.5
    mix = tilt * -np.log(u[:, 2:9])
    mix /= mix.sum(axis=1, keepdims=True)
    etf_beta = ETF_DAILY_COVARIANCE[:, IDX_SPY] / ETF_DAILY_COVARIANCE[IDX_SPY, IDX_SPY]
    eq_idx = np.array([IDX_SPY, *IDX_STYLE])
    mix *= (beta / (mix @ etf_beta[eq_idx]))[:, None]
    loadings = np.zeros((n, len(ETFS)))
    loadings[:, eq_idx] = mix
    loadings[:, IDX_STYLE] += 0.15 * ndtri(u[:, 9:15])  # idiosyncratic style tilts, either sign
    loadings[:, IDX_TLT] = np.where(
        defensive, 0.2 + 0.3 * u[:, 15], np.where(high, -0.05 + 0.1 * (u[:, 15] - 0.5), 0.1 * (u[:, 15] - 0.5))
    )
    idio_sd = np.where(
        defensive, 0.008 + 0.006 * u[:, 16], np.where(high, 0.018 + 0.01 * u[:, 16], 0.01 + 0.01 * u[:, 16])
    )

    pays = u[:, 17] < np.where(defensive, 0.85, np.where(high, 0.2, 0.5))
    annual_yield = np.where(defensive, 0.03 + 0.02 * u[:, 18], 0.005 + 0.035 * u[:, 18])
    dividend_yield = np.where(pays, annual_yield / 4, 0.0)
    dividend_phase = (u[:, 19] * DIVIDEND_PERIOD).astype(np.int64)
    split_rate = np.where(u[:, 20] < 0.2, SPLIT_RATE, 0.0)

    first = np.zeros(n, dtype=np.int64)
    last = np.full(n, n_cal - 1, dtype=np.int64)
    lo, hi = session_position(LATE_LISTING_RANGE[0]), session_position(LATE_LISTING_RANGE[1])
    late = is_uni & (u[:, 21] < P_LATE_LISTING)
    first[late] = lo + (u[late, 22] * (hi - lo)).astype(np.int64)
    lo, hi = session_position(DELISTING_RANGE[0]), session_position(DELISTING_RANGE[1])
    gone = is_uni & (u[:, 23] < P_DELISTING)
    last[gone] = np.maximum(lo + (u[gone, 24] * (hi - lo)).astype(np.int64), first[gone] + TRADING_DAYS)
    last = np.minimum(last, n_cal - 1)
    gap_rate = np.where(is_uni & (u[:, 25] < P_GAPPY), GAP_RATE, 0.0)

    anchor_price = np.clip(np.exp(np.log(45.0) + 0.8 * ndtri(u[:, 26])), 5.0, 900.0)
    volume_base = np.exp(np.log(2e6) + 1.0 * ndtri(u[:, 27]))

    # The ETFs are the factors themselves: unit loading, no noise, dividends, no splits.
    for i in np.flatnonzero(is_etf):
        k = ETFS.index(symbols[i])
        loadings[i] = 0.0
        loadings[i, k] = 1.0
        idio_sd[i] = 0.0
        dividend_yield[i] = ETF_ANNUAL_YIELD[k] / 4
        split_rate[i] = 0.0
        anchor_price[i] = ETF_ANCHOR_PRICE[k]
        volume_base[i] = 2e7
        category[i] = "etf"

    return SymbolParameters(
        symbols=list(symbols),
        keys=keys,
        category=category,
        loadings=loadings,
        idio_sd=idio_sd,
        dividend_yield=dividend_yield,
        dividend_phase=dividend_phase,
        split_rate=split_rate,
        gap_rate=gap_rate,
        first=first,
        last=last,
        anchor_price=anchor_price,
        volume_base=volume_base,
    )
