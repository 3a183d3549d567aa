"""Fault: the price source fails for 5 % of the symbols on a daily run.

The run succeeds for the rest, the failures are recorded with their reasons (the
`symbol_fetch_failures` rows and the prices materialisation's metadata), and readers of the
failed symbols get their previous session's betas, flagged stale: in `symbols status` and in
every portfolio exposures document that holds them.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
import sqlalchemy as sa

from symbol_pipeline.defs.partitions import trading_date_partitions
from symbol_pipeline.defs.resources import DatabaseResource, PriceSourceResource
from symbol_pipeline.defs.symbols.assets import build_symbol_layer_assets
from symbol_pipeline.defs.symbols.jobs import factor_returns_job, symbol_layer_job
from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.runs.submit import register_symbols, run_symbol_layer
from symbol_pipeline.services import portfolio as service
from symbol_pipeline.services import symbols as symbol_service
from symbol_pipeline.sources.base import FetchResult, PriceSource
from symbol_pipeline.sources.synthetic import SyntheticMarket
from symbol_pipeline.storage import betas as beta_store
from symbol_pipeline.storage import universe
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.schema import symbol_fetch_failures
from symbol_pipeline_tests.conftest import BATCHING_ENV, HISTORY_START

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

YESTERDAY, TODAY = dt.date(2024, 6, 13), dt.date(2024, 6, 14)
SYMBOLS = [f"SYN{i:04d}" for i in range(1, 41)]
BROKEN = ["SYN0007", "SYN0031"]  # 2 of 40: 5 %
REASON = "HTTP 503 from the price source"


class FailsFor(PriceSource):
    """The synthetic market, except that the `broken` symbols fail as in a partial outage."""

    name = "synthetic"

    def __init__(self, broken: set[str]):
        self.inner, self.broken = SyntheticMarket(seed=5, n_symbols=50), broken

    def fetch(self, symbols, start, end):
        result = self.inner.fetch([s for s in symbols if s not in self.broken], start, end)
        return FetchResult(result.prices, {**result.failures, **{s: REASON for s in symbols if s in self.broken}})


class FlakySourceResource(PriceSourceResource):
    broken: list[str] = []

    def build_source(self) -> PriceSource:
        return FailsFor(set(self.broken))


def _run(url: str, instance: dg.DagsterInstance, day: dt.date, broken: list[str]):
    defs = dg.Definitions(
        assets=build_symbol_layer_assets(trading_date_partitions(HISTORY_START)),
        jobs=[factor_returns_job, symbol_layer_job],
        resources={"database": DatabaseResource(url=url), "price_source": FlakySourceResource(broken=broken)},
    )
    return run_symbol_layer(instance, defs, day, day, SYMBOLS)


def _prices_metadata(instance: dg.DagsterInstance, run_id: str) -> dict:
    records = instance.fetch_materializations(dg.AssetKey("symbol_prices"), limit=100).records
    return next(r.asset_materialization.metadata for r in records if r.run_id == run_id)


def test_five_percent_of_symbols_fail(new_pg_database, instance, monkeypatch):
    for key, value in BATCHING_ENV.items():
        monkeypatch.setenv(key, value)
    url = new_pg_database("sp_fault_source")
    engine = get_engine(url)
    with engine.begin() as conn:
        universe.add_symbols(conn, SYMBOLS, status=universe.STATUS_ACTIVE)
    register_symbols(instance, SYMBOLS)
    assert _run(url, instance, YESTERDAY, broken=[]).success

    today = _run(url, instance, TODAY, broken=BROKEN)
    assert today.success  # 5 % of the universe failing does not fail the universe's run

    with engine.connect() as conn:
        before = beta_store.read_exposures(conn, YESTERDAY, SYMBOLS)
        after = beta_store.read_exposures(conn, TODAY, SYMBOLS)
        failures = conn.execute(sa.select(symbol_fetch_failures).where(
            symbol_fetch_failures.c.requested_end == TODAY)).all()
    healthy = sorted(set(before.loc[before.beta.notna(), "symbol"]) - set(BROKEN))
    assert len(healthy) >= 0.9 * len(SYMBOLS)
    computed = set(after.loc[after.beta.notna(), "symbol"])
    assert set(healthy) <= computed and not computed & set(BROKEN)  # the rest computed, the broken not
    assert {(f.symbol, f.reason) for f in failures} == {(s, REASON) for s in BROKEN}
    metadata = _prices_metadata(instance, today.run_ids[-1])
    assert metadata["fetch_failures"].value == len(BROKEN)
    assert metadata["failed_symbols"].value == {s: REASON for s in BROKEN}

    # A failed symbol is still active, serves yesterday's betas, and says they are stale.
    for symbol in BROKEN:
        status = symbol_service.symbol_status_document(engine, symbol)
        assert status["status"] == "ready" and status["stale"] is True
        assert status["latest_factors_date"] == YESTERDAY
    assert symbol_service.symbol_status_document(engine, healthy[0])["stale"] is False

    user = service.create_user(engine, "faults")
    portfolio = service.create_portfolio(engine, user.id, "holds a failed symbol", 1_000_000)
    service.add_positions(engine, portfolio["id"], [
        {"symbol": BROKEN[0], "quantity": 100, "entry_price": 50.0},
        {"symbol": healthy[0], "quantity": 100, "entry_price": 50.0},
    ])
    document = service.get_portfolio_factor_exposures(engine, portfolio["id"])
    assert document["betas_date"] == TODAY.isoformat()
    assert document["stale_symbols"] == [BROKEN[0]]
    # Its beta is yesterday's: every factor covered, none missing.
    assert document["missing_symbols"] == []
    assert all(document["factors"][f]["coverage"] == 1.0 for f in FACTOR_NAMES)
    alone = service.create_portfolio(engine, user.id, "only the failed symbol", 1_000_000)
    service.add_position(engine, alone["id"], BROKEN[0], 100, entry_price=50.0)
    only = service.get_portfolio_factor_exposures(engine, alone["id"])
    last = before[before.symbol == BROKEN[0]].set_index("factor")["beta"]
    for factor in FACTOR_NAMES:
        assert only["factors"][factor]["dollar_exposure"] == pytest.approx(only["gross_exposure"] * last[factor])

    # The symbol factors service serves the same last betas, dated the day they were computed.
    day, rows = symbol_service.symbol_factors(engine, BROKEN[0])
    assert day == YESTERDAY and {r["factor"]: r["beta"] for r in rows} == last.to_dict()
    engine.dispose()
