"""Which date × symbol partitions a symbol-layer step reports: those of its run that the database
holds a row for, plus, for prices, the history it loaded inside the partitions that was not
recorded before; never a key that is not a partition (before the first date, or a symbol outside
the dynamic partition)."""

from __future__ import annotations

import datetime as dt

import pytest

from symbol_pipeline.defs import events
from symbol_pipeline.defs.partitions import trading_date_partitions
from symbol_pipeline.defs.symbols.scope import PartitionScope
from symbol_pipeline.lib.factors import REGRESSOR_ETFS
from symbol_pipeline.runs.keys import SYMBOL_DIMENSION
from symbol_pipeline.storage.schema import (
    symbol_daily_metrics,
    symbol_factor_exposures,
    symbol_prices_daily,
    symbol_session_gaps,
)

D = dt.date
FIRST = "2024-06-24"  # the first date partition: 2024-06-20 is upstream history
RUN = D(2024, 6, 28)


@pytest.fixture
def scope(instance) -> PartitionScope:
    """A run over 2024-06-28 × {AAA, BBB}; CCC has rows but is no partition of the symbols."""
    instance.add_dynamic_partitions(SYMBOL_DIMENSION, ["AAA", "BBB", "DDD"])
    return PartitionScope(trading_date_partitions(FIRST), instance, {RUN}, {"AAA", "BBB"})


def _insert(engine, table, rows) -> None:
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)


def _prices(engine) -> None:
    closes = [("AAA", D(2024, 6, d)) for d in (20, 26, 27, 28)] + [("BBB", RUN), ("CCC", RUN), ("DDD", RUN)]
    _insert(engine, symbol_prices_daily, [{"symbol": s, "date": d, "close": 10.0, "source": "test"} for s, d in closes])
    _insert(engine, symbol_session_gaps, [{"symbol": "BBB", "date": D(2024, 6, 27), "reason": "gap"}])


def test_a_run_reports_its_own_partitions_and_the_history_it_loaded(engine, scope):
    _prices(engine)
    pairs = scope.price_pairs(engine, [RUN], ["AAA", "BBB"], {"AAA": D(2024, 6, 20)})
    # Own: AAA and BBB on the run's date (not CCC, no partition; not DDD, not in the run).
    # History: AAA from its fetch on, inside the partitions (not 06-20, before the first date).
    # BBB's recorded gap on 06-27 is neither: BBB loaded no history.
    assert sorted(pairs[:2]) == [("2024-06-28", "AAA"), ("2024-06-28", "BBB")]
    assert sorted(pairs[2:]) == [("2024-06-26", "AAA"), ("2024-06-27", "AAA")]


def test_a_recorded_gap_counts_as_a_price_for_the_run(engine, scope, instance):
    _prices(engine)
    pairs = scope.price_pairs(engine, [D(2024, 6, 27)], ["BBB"], {})
    assert pairs == []  # 06-27 is not the scope's run date: nothing of the run
    run_27 = PartitionScope(trading_date_partitions(FIRST), instance, {D(2024, 6, 27)}, {"BBB"})
    assert run_27.price_pairs(engine, [D(2024, 6, 27)], ["BBB"], {}) == [("2024-06-27", "BBB")]


def test_history_already_recorded_is_not_reported_again(engine, scope, instance):
    _prices(engine)
    events.write_keys(instance, "earlier-run", "__ASSET_JOB", "symbol_prices", "symbol_prices",
                      ["2024-06-26|AAA"], None)
    pairs = scope.price_pairs(engine, [RUN], ["AAA", "BBB"], {"AAA": D(2024, 6, 20)})
    assert sorted(pairs) == [("2024-06-27", "AAA"), ("2024-06-28", "AAA"), ("2024-06-28", "BBB")]


def test_history_dates_are_earlier_dates_with_every_regressor(scope):
    full = [(d, etf) for d in ("2024-06-26", "2024-06-28") for etf in REGRESSOR_ETFS]
    partial = [("2024-06-27", etf) for etf in REGRESSOR_ETFS[:-1]] + [("2024-06-27", "AAA")]
    assert scope.history_dates(full + partial) == ["2024-06-26"]  # 06-28 is the run's own date


def _beta(symbol: str, day: dt.date, factor: str) -> dict:
    return {"symbol": symbol, "date": day, "factor": factor, "beta": None, "observations": 5, "method": "ols",
            "window": 90, "min_observations": 30, "beta_cap": 5.0, "quality": "insufficient_data"}


def test_beta_partitions_per_asset_of_any_quality(engine, scope):
    _insert(engine, symbol_factor_exposures, [
        _beta("AAA", RUN, "market_beta"), _beta("AAA", RUN, "ridge_value"), _beta("AAA", RUN, "ridge_size"),
        _beta("BBB", RUN, "ir_beta"), _beta("CCC", RUN, "market_beta"), _beta("AAA", D(2024, 6, 27), "ir_beta"),
    ])
    assert scope.beta_pairs(engine, [RUN], ["AAA", "BBB", "CCC"]) == {
        "market_beta": [("2024-06-28", "AAA")],  # CCC is no partition
        "ridge_factor_betas": [("2024-06-28", "AAA")],  # one key for the asset's factors
        "ir_beta": [("2024-06-28", "BBB")],  # AAA's 06-27 row is not the run's
    }


def test_metric_partitions_are_the_runs_rows(engine, scope):
    _insert(engine, symbol_daily_metrics, [{"symbol": s, "date": d} for s, d in
                                           [("AAA", RUN), ("CCC", RUN), ("BBB", D(2024, 6, 27))]])
    assert scope.metric_pairs(engine, [RUN], ["AAA", "BBB", "CCC"]) == [("2024-06-28", "AAA")]
