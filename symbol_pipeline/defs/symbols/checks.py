"""Asset checks, evaluated inside the asset's own run over that run's dates and symbols."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import dagster as dg

from symbol_pipeline.lib.factors import BETA_GROUPS
from symbol_pipeline.lib.returns import price_anomalies
from symbol_pipeline.storage.quality import beta_quality, read_run_prices

COVERAGE_WARNING = 0.9

PRICE_CHECKS = [
    dg.AssetCheckSpec("closes_positive", asset="symbol_prices", description="No close at or below zero."),
    dg.AssetCheckSpec("closes_fresh", asset="symbol_prices",
                      description="Every symbol has a close on the run's dates, and not a repeat of the day before."),
    dg.AssetCheckSpec("returns_plausible", asset="symbol_prices",
                      description="No one-day total return beyond ±50% (a missing split adjustment, say)."),
]

BETA_CHECKS = [
    dg.AssetCheckSpec("betas_finite_and_covered", asset=name,
                      description="Stored betas are finite and cover at least 90% of the run's symbols.")
    for name in BETA_GROUPS
]


def _sample(items: Sequence[str]) -> str:
    return ", ".join(items[:20]) + (" …" if len(items) > 20 else "")


def price_checks(engine, symbols: Sequence[str], dates) -> Iterator[dg.AssetCheckResult]:
    if not symbols or not dates:
        return
    with engine.connect() as conn:
        prices = read_run_prices(conn, symbols, dates)
    q = price_anomalies(prices, symbols, dates)
    yield dg.AssetCheckResult(
        check_name="closes_positive", asset_key="symbol_prices", passed=not q["non_positive"],
        metadata={"symbols": _sample(q["non_positive"])},
    )
    yield dg.AssetCheckResult(
        check_name="closes_fresh", asset_key="symbol_prices",
        passed=not q["missing"] and not q["repeated"], severity=dg.AssetCheckSeverity.WARN,
        metadata={"missing": len(q["missing"]), "missing_symbols": _sample(q["missing"]),
                  "repeated": len(q["repeated"]), "repeated_symbols": _sample(q["repeated"])},
    )
    yield dg.AssetCheckResult(
        check_name="returns_plausible", asset_key="symbol_prices", passed=not q["absurd"],
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"absurd": len(q["absurd"]), "symbols": _sample(q["absurd"])},
    )


def beta_checks(engine, symbols: Sequence[str], dates, assets: Sequence[str]) -> Iterator[dg.AssetCheckResult]:
    if not symbols or not dates:
        return
    for asset in assets:
        factors = list(BETA_GROUPS[asset])
        with engine.connect() as conn:
            q = beta_quality(conn, symbols, dates, factors)
        yield dg.AssetCheckResult(
            check_name="betas_finite_and_covered", asset_key=asset,
            passed=not q["non_finite"] and q["coverage"] >= COVERAGE_WARNING,
            severity=dg.AssetCheckSeverity.ERROR if q["non_finite"] else dg.AssetCheckSeverity.WARN,
            metadata={"coverage": round(q["coverage"], 4), "non_finite": _sample(q["non_finite"])},
        )
