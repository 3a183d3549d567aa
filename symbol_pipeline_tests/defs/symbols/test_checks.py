"""Every asset check of the symbol layer passes on good data and fails on its own kind of bad data."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from symbol_pipeline.defs.symbols import checks
from symbol_pipeline.lib.factors import BETA_GROUPS, FACTORS
from symbol_pipeline.sources.base import PRICE_COLUMNS
from symbol_pipeline.storage import prices as price_store
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.schema import symbol_factor_exposures

D0, D1 = dt.date(2024, 6, 27), dt.date(2024, 6, 28)


@pytest.fixture
def sqlite_engine(tmp_path):
    """An empty project database in a SQLite file (the checks read frames, not a backend)."""
    return get_engine(f"sqlite:///{tmp_path / 'checks.sqlite'}")


def _prices(rows: list[tuple[str, dt.date, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["symbol", "date", "close"])
    for column in PRICE_COLUMNS:
        if column not in frame:
            frame[column] = {"dividend": 0.0, "split_ratio": 1.0, "volume": 1000.0}.get(column, frame["close"])
    return frame.loc[:, list(PRICE_COLUMNS)]


def _price_results(engine, rows, symbols):
    with engine.begin() as conn:
        price_store.write_prices(conn, _prices(rows), "test")
    return {r.check_name: r for r in checks.price_checks(engine, symbols, [D1])}


def test_price_checks_pass_on_good_prices(sqlite_engine):
    results = _price_results(sqlite_engine, [("A", D0, 10.0), ("A", D1, 10.5), ("B", D0, 20.0), ("B", D1, 19.0)], ["A", "B"])
    assert {name: r.passed for name, r in results.items()} == {
        "closes_positive": True, "closes_fresh": True, "returns_plausible": True,
    }


@pytest.mark.parametrize(
    ("check", "rows"),
    [
        ("closes_positive", [("A", D0, 10.0), ("A", D1, -1.0), ("B", D0, 20.0), ("B", D1, 19.0)]),
        ("closes_fresh", [("A", D0, 10.0), ("A", D1, 10.0), ("B", D0, 20.0), ("B", D1, 19.0)]),  # repeated
        ("closes_fresh", [("A", D0, 10.0), ("A", D1, 10.5), ("B", D0, 20.0)]),  # B missing on D1
        ("returns_plausible", [("A", D0, 10.0), ("A", D1, 2.5), ("B", D0, 20.0), ("B", D1, 19.0)]),  # -75 %
    ],
    ids=["non_positive", "repeated", "missing", "absurd_move"],
)
def test_each_price_check_fails_on_its_bad_data(sqlite_engine, check, rows):
    results = _price_results(sqlite_engine, rows, ["A", "B"])
    assert not results[check].passed
    others = {name for name, r in results.items() if not r.passed} - {check}
    # A negative close is also an absurd move; nothing else fails alongside.
    assert others <= {"returns_plausible"}


def _write_betas(engine, values: dict[str, float | None]) -> None:
    rows = [
        {
            "symbol": symbol, "date": D1, "factor": f.name, "beta": beta, "beta_uncapped": beta, "capped": False,
            "observations": 90, "method": f.method, "window": f.window, "min_observations": f.min_observations,
            "beta_cap": 5.0, "quality": "ok" if beta is not None else "insufficient_data",
        }
        for symbol, beta in values.items()
        for f in FACTORS
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(symbol_factor_exposures), rows)


def _beta_results(engine, symbols):
    return {r.asset_key.path[-1]: r for r in checks.beta_checks(engine, symbols, [D1], list(BETA_GROUPS))}


def test_beta_check_passes_on_finite_covered_betas(sqlite_engine):
    _write_betas(sqlite_engine, {"A": 1.1, "B": 0.9})
    assert all(r.passed for r in _beta_results(sqlite_engine, ["A", "B"]).values())


def test_beta_check_fails_on_a_non_finite_beta(sqlite_engine):
    _write_betas(sqlite_engine, {"A": float("inf"), "B": 0.9})
    results = _beta_results(sqlite_engine, ["A", "B"])
    assert not any(r.passed for r in results.values())
    assert all(r.severity.value == "ERROR" for r in results.values())


def test_beta_check_fails_below_the_coverage_threshold(sqlite_engine):
    _write_betas(sqlite_engine, {"A": 1.0, "B": None, "C": None})  # one symbol of three has betas
    results = _beta_results(sqlite_engine, ["A", "B", "C"])
    assert not any(r.passed for r in results.values())
    assert all(r.severity.value == "WARN" for r in results.values())
    assert results["market_beta"].metadata["coverage"].value == pytest.approx(1 / 3, abs=1e-4)
