"""The reads behind the asset checks: a run's prices from the session before its first date, and
per run the non-finite betas and the share of symbol-dates with every factor, whichever of the two
query paths (symbols filtered in SQL up to 500 of them, in pandas above) reads them."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from symbol_pipeline.storage import quality
from symbol_pipeline.storage.schema import symbol_factor_exposures, symbol_prices_daily

D0, D1 = dt.date(2024, 6, 27), dt.date(2024, 6, 28)
FACTORS = ["market_beta", "ir_beta"]


def _beta(symbol: str, day: dt.date, factor: str, value: float | None) -> dict:
    return {"symbol": symbol, "date": day, "factor": factor, "beta": value, "observations": 90, "method": "ols",
            "window": 90, "min_observations": 30, "beta_cap": 5.0, "quality": "ok" if value is not None else "insufficient_data"}


def test_beta_quality_counts_non_finite_betas_and_full_coverage(engine):
    rows = [_beta("A", D1, f, 1.0) for f in FACTORS]  # full
    rows += [_beta("B", D1, "market_beta", float("inf")), _beta("B", D1, "ir_beta", 0.5)]  # full, one infinite
    rows += [_beta("C", D1, "market_beta", 0.7), _beta("C", D1, "ir_beta", None)]  # a NULL beta: not covered
    rows += [_beta("D", D1, "market_beta", float("-inf")), _beta("A", D0, "market_beta", float("inf"))]  # outside
    with engine.begin() as conn:
        conn.execute(symbol_factor_exposures.insert(), rows)
    with engine.connect() as conn:
        small = quality.beta_quality(conn, ["A", "B", "C"], [D1], FACTORS)
        many = quality.beta_quality(conn, ["A", "B", "C"] + [f"Z{i:03d}" for i in range(600)], [D1], FACTORS)
    assert small == {"non_finite": ["B"], "coverage": 2 / 3, "expected": 3}
    assert many == {"non_finite": ["B"], "coverage": 2 / 603, "expected": 603}


def test_a_runs_prices_start_the_session_before_its_first_date(engine):
    days = [dt.date(2024, 6, 21), dt.date(2024, 6, 24), D0, D1]  # 06-22 and 06-23: a weekend
    with engine.begin() as conn:
        conn.execute(symbol_prices_daily.insert(),
                     [{"symbol": "A", "date": d, "close": 10.0 + i, "source": "test"}
                      for i, d in enumerate([dt.date(2024, 6, 20), *days])])
    with engine.connect() as conn:
        prices = quality.read_run_prices(conn, ["A"], [dt.date(2024, 6, 24), D1])
    assert sorted(pd.to_datetime(prices["date"]).dt.date) == days  # not 06-20, two sessions before
