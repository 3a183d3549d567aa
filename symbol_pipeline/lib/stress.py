"""Stress tests (docs/methodology.md, "Stress tests"). Pure numpy/pandas; returns from `lib.returns`.

A scenario shocks some of the eight factor ETFs (rates through TLT: m_TLT = −16.5 × Δy,
Δy in decimal so +100 bp = +0.01 ⇒ TLT −16.5 %). The correlated path moves every unshocked
ETF by its conditional expectation E[u | s] = Σ_us Σ_ss⁻¹ s, Σ the EWMA (λ = 0.94) covariance
of daily returns over the 252 sessions ending at the calculation date. P&L is computed with
one factor model at a time, never summed across models (the style ETFs all carry the market):

    market  β_mkt × m_SPY
    rates   β_IR × m_TLT
    style   Σ_k ridge β_k × m_k
    spread  Σ_j spread β_j × (m_long_j − m_short_j)

each × equity. There is no cap on losses: a net-short book in a rally loses what it loses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from symbol_pipeline.lib.returns import total_returns

EWMA_LAMBDA = 0.94
COVARIANCE_SESSIONS = 252
MIN_COVARIANCE_SESSIONS = 60
TLT_DURATION = 16.5

MODELS = ("market", "rates", "style", "spread")
HEADLINE_MODEL = "market"


@dataclass(frozen=True)
class FactorLeg:
    """How one factor's beta turns ETF moves into a return: Σ sign × m_etf over `legs`."""

    factor: str
    model: str
    legs: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    category: str
    # Direct ETF return shocks, decimal (−0.10 = −10 %).
    shocks: Mapping[str, float] = field(default_factory=dict)
    # Parallel yield change in basis points, applied to TLT through its duration.
    rates_bp: float | None = None


def etf_returns(prices: pd.DataFrame, sessions: pd.DatetimeIndex, etfs: Sequence[str]) -> pd.DataFrame:
    """Daily total returns, shape (T, N) = (len(sessions) − 1, len(etfs)), NaN where a close is missing.

    prices: rows symbol, date, close, dividend, split_ratio, at most one per (symbol, date). Put on
    the `sessions` grid first, so no return spans a gap; the formula is `returns.total_returns_array`.
    """
    returns = total_returns(prices, sessions).reindex(columns=pd.Index(list(etfs), name="symbol"))
    return returns.iloc[1:].astype(float)


def ewma_covariance(returns: np.ndarray, lam: float = EWMA_LAMBDA,
                    min_sessions: int = MIN_COVARIANCE_SESSIONS) -> np.ndarray:
    """EWMA covariance, shape (N, N), of returns shape (T, N), newest row last.

    Zero-mean (RiskMetrics): Σ = Σ_t w_t r_t r_tᵀ with w_t ∝ λ^(T−1−t), Σ w = 1. Sessions with
    any NaN are dropped (the weights follow the sessions kept); fewer than min_sessions raises.
    """
    returns = np.asarray(returns, dtype=float)
    complete = returns[~np.isnan(returns).any(axis=1)]
    if len(complete) < min_sessions:
        raise ValueError(
            f"only {len(complete)} sessions with every ETF's return in the covariance window; "
            f"{min_sessions} needed"
        )
    weights = lam ** np.arange(len(complete) - 1, -1, -1, dtype=float)
    weights /= weights.sum()
    return (complete * weights[:, None]).T @ complete


def rate_shock_to_tlt(rates_bp: float, duration: float = TLT_DURATION) -> float:
    """TLT return for a parallel yield move: −duration × Δy, Δy = bp / 10,000 (rates up ⇒ TLT down)."""
    return -duration * (rates_bp / 10_000.0)


def scenario_shocks(scenario: Scenario, rates_etf: str = "TLT", duration: float = TLT_DURATION) -> dict[str, float]:
    """The ETF return shocks of a scenario, the rate move converted to a TLT return."""
    shocks = {k: float(v) for k, v in scenario.shocks.items()}
    if scenario.rates_bp is not None:
        if rates_etf in shocks:
            raise ValueError(f"scenario {scenario.name!r} shocks {rates_etf} both directly and through rates_bp")
        shocks[rates_etf] = rate_shock_to_tlt(scenario.rates_bp, duration)
    return shocks


def conditional_moves(shocks: Mapping[str, float], cov: np.ndarray, etfs: Sequence[str]) -> np.ndarray:
    """Every ETF's move, shape (N,): the shocks where given, E[u | s] = Σ_us Σ_ss⁻¹ s elsewhere.

    A singular Σ_ss (e.g. two perfectly correlated shocked ETFs) uses the pseudo-inverse.
    """
    etfs = list(etfs)
    s_idx = [etfs.index(e) for e in shocks]
    u_idx = [i for i in range(len(etfs)) if i not in s_idx]
    s = np.array([shocks[e] for e in shocks], dtype=float)
    moves = np.zeros(len(etfs))
    moves[s_idx] = s
    if u_idx and s_idx:
        sigma_ss = cov[np.ix_(s_idx, s_idx)]
        sigma_us = cov[np.ix_(u_idx, s_idx)]
        moves[u_idx] = sigma_us @ (np.linalg.pinv(sigma_ss) @ s)
    return moves


def direct_moves(shocks: Mapping[str, float], etfs: Sequence[str]) -> np.ndarray:
    """The shocked ETFs' moves, 0 elsewhere, shape (N,)."""
    etfs = list(etfs)
    moves = np.zeros(len(etfs))
    for etf, value in shocks.items():
        moves[etfs.index(etf)] = value
    return moves


def factor_returns(legs: Sequence[FactorLeg], moves: np.ndarray, etfs: Sequence[str]) -> np.ndarray:
    """Each factor's return under the ETF moves, shape (F,): Σ sign × m_etf over its legs."""
    index = {e: i for i, e in enumerate(etfs)}
    return np.array([sum(sign * moves[index[etf]] for etf, sign in leg.legs) for leg in legs])


def model_pnl(betas: np.ndarray, equity: np.ndarray, legs: Sequence[FactorLeg], moves: np.ndarray,
              etfs: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """P&L per model and per factor for P portfolios under one set of ETF moves.

    betas : shape (P, F), columns in the order of `legs`; NaN counts as no exposure
    equity: shape (P,)
    Returns ({model: shape (P,)}, contributions shape (P, F)), dollars. No cap.
    """
    f_ret = factor_returns(legs, moves, etfs)  # (F,)
    contributions = np.nan_to_num(np.asarray(betas, dtype=float)) * f_ret[None, :] * np.asarray(equity)[:, None]
    models = np.array([leg.model for leg in legs])
    return {m: contributions[:, models == m].sum(axis=1) for m in MODELS}, contributions


_SCENARIO_KEYS = {"name", "description", "category", "shocks", "rates_bp"}


def parse_scenarios(document: Mapping, etfs: Sequence[str], source: str = "scenarios") -> list[Scenario]:
    """Validate a scenarios document ({"scenarios": [...]}) and return its scenarios.

    Each scenario: a unique `name` (letters, digits, _ and -), optional `description` and
    `category`, `shocks` {ETF: decimal return > −1} over the given ETFs and/or `rates_bp`
    (a yield move in basis points, |Δ| ≤ 2,000); at least one of the two; no other keys.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("scenarios"), list):
        raise ValueError(f"{source}: expected an object with a 'scenarios' list")
    out: list[Scenario] = []
    seen: set[str] = set()
    for i, raw in enumerate(document["scenarios"]):
        where = f"{source}: scenario #{i + 1}"
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: expected an object")
        unknown = set(raw) - _SCENARIO_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_SCENARIO_KEYS)})")
        name = raw.get("name")
        if not isinstance(name, str) or not name or not all(ch.isalnum() or ch in "_-" for ch in name):
            raise ValueError(f"{where}: 'name' must be a non-empty string of letters, digits, _ and -")
        where = f"{source}: scenario {name!r}"
        if name in seen:
            raise ValueError(f"{where}: duplicate name")
        seen.add(name)
        shocks = raw.get("shocks", {})
        if not isinstance(shocks, Mapping):
            raise ValueError(f"{where}: 'shocks' must be an object of ETF -> return")
        for etf, value in shocks.items():
            if etf not in etfs:
                raise ValueError(f"{where}: unknown ETF {etf!r} (known: {', '.join(etfs)})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise ValueError(f"{where}: shock of {etf} must be a number, got {value!r}")
            if value <= -1.0:
                raise ValueError(f"{where}: shock of {etf} is {value}; a return cannot be -100% or less")
        rates_bp = raw.get("rates_bp")
        if rates_bp is not None:
            if isinstance(rates_bp, bool) or not isinstance(rates_bp, (int, float)) or not np.isfinite(rates_bp):
                raise ValueError(f"{where}: 'rates_bp' must be a number of basis points")
            if abs(rates_bp) > 2000:
                raise ValueError(f"{where}: 'rates_bp' {rates_bp} is beyond ±2,000 bp")
            if "TLT" in shocks:
                raise ValueError(f"{where}: shocks TLT both directly and through 'rates_bp'")
        if not shocks and rates_bp is None:
            raise ValueError(f"{where}: needs 'shocks' or 'rates_bp'")
        for key in ("description", "category"):
            if key in raw and not isinstance(raw[key], str):
                raise ValueError(f"{where}: '{key}' must be a string")
        out.append(
            Scenario(
                name=name,
                description=raw.get("description", name),
                category=raw.get("category", "custom"),
                shocks={k: float(v) for k, v in shocks.items()},
                rates_bp=None if rates_bp is None else float(rates_bp),
            )
        )
    return out
