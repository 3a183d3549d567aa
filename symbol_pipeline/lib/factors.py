"""The twelve factor definitions of docs/methodology.md, as data."""

from __future__ import annotations

from dataclasses import dataclass

MARKET_ETF = "SPY"
RATES_ETF = "TLT"
# Ridge regressors in their fixed column order; the factor named after each is its coefficient.
RIDGE_ETFS: tuple[str, ...] = ("VTV", "VUG", "MTUM", "QUAL", "IWM", "USMV")
REGRESSOR_ETFS: tuple[str, ...] = (MARKET_ETF, RATES_ETF, *RIDGE_ETFS)

BETA_CAP = 5.0
RIDGE_ALPHA = 1.0

FAMILY_MARKET = "market"
FAMILY_RATES = "rates"
FAMILY_RIDGE = "ridge"
FAMILY_SPREAD = "spread"


@dataclass(frozen=True)
class FactorSpec:
    """One stored factor: `regressors` is (etf,) for OLS and ridge, (long, short) for a spread."""

    name: str
    family: str
    regressors: tuple[str, ...]
    window: int
    min_observations: int
    method: str
    description: str


FACTORS: tuple[FactorSpec, ...] = (
    FactorSpec("market_beta", FAMILY_MARKET, ("SPY",), 90, 30, "ols", "Beta to the S&P 500 (SPY)"),
    FactorSpec("ir_beta", FAMILY_RATES, ("TLT",), 90, 30, "ols", "Beta to long Treasuries (TLT)"),
    FactorSpec("ridge_value", FAMILY_RIDGE, ("VTV",), 90, 30, "ridge", "Value (VTV), joint ridge"),
    FactorSpec("ridge_growth", FAMILY_RIDGE, ("VUG",), 90, 30, "ridge", "Growth (VUG), joint ridge"),
    FactorSpec("ridge_momentum", FAMILY_RIDGE, ("MTUM",), 90, 30, "ridge", "Momentum (MTUM), joint ridge"),
    FactorSpec("ridge_quality", FAMILY_RIDGE, ("QUAL",), 90, 30, "ridge", "Quality (QUAL), joint ridge"),
    FactorSpec("ridge_size", FAMILY_RIDGE, ("IWM",), 90, 30, "ridge", "Size (IWM), joint ridge"),
    FactorSpec(
        "ridge_low_volatility", FAMILY_RIDGE, ("USMV",), 90, 30, "ridge", "Low volatility (USMV), joint ridge"
    ),
    FactorSpec("spread_growth_value", FAMILY_SPREAD, ("VUG", "VTV"), 180, 60, "ols", "Growth minus value"),
    FactorSpec("spread_momentum", FAMILY_SPREAD, ("MTUM", "SPY"), 180, 60, "ols", "Momentum minus market"),
    FactorSpec("spread_size", FAMILY_SPREAD, ("IWM", "SPY"), 180, 60, "ols", "Small caps minus market"),
    FactorSpec("spread_quality", FAMILY_SPREAD, ("QUAL", "SPY"), 180, 60, "ols", "Quality minus market"),
)

FACTOR_BY_NAME: dict[str, FactorSpec] = {f.name: f for f in FACTORS}
FACTOR_NAMES: tuple[str, ...] = tuple(f.name for f in FACTORS)
RIDGE_FACTORS: tuple[FactorSpec, ...] = tuple(f for f in FACTORS if f.family == FAMILY_RIDGE)
SPREAD_FACTORS: tuple[FactorSpec, ...] = tuple(f for f in FACTORS if f.family == FAMILY_SPREAD)

# Sessions of returns the longest window needs, and so of closes (one more, for the first return).
LONGEST_WINDOW = max(f.window for f in FACTORS)
HISTORY_SESSIONS = LONGEST_WINDOW + 1

QUALITY_OK = "ok"
QUALITY_INSUFFICIENT = "insufficient_data"
QUALITY_CAPPED = "capped"
QUALITY_ZERO_VARIANCE = "zero_variance"
QUALITY_NO_PRICE = "no_price_on_date"

# The four groups of betas, each stored and shown as one asset of the symbol layer.
BETA_GROUPS: dict[str, tuple[str, ...]] = {
    "market_beta": ("market_beta",),
    "ir_beta": ("ir_beta",),
    "ridge_factor_betas": tuple(f.name for f in RIDGE_FACTORS),
    "spread_factor_betas": tuple(f.name for f in SPREAD_FACTORS),
}


def with_regressor_etfs(symbols) -> list[str]:
    """`symbols` followed by the regressor ETFs, each once, in order: what a symbol-layer run covers."""
    return list(dict.fromkeys([*symbols, *REGRESSOR_ETFS]))
