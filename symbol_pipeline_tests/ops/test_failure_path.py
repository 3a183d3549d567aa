"""A source that fails for one symbol: the others go on, the failure is recorded, and the
symbol keeps serving its previous betas, shown behind in `symbols status`."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import sqlalchemy as sa

from symbol_pipeline.defs.partitions import trading_date_partitions
from symbol_pipeline.defs.resources import DatabaseResource, PriceSourceResource
from symbol_pipeline.defs.symbols.assets import build_symbol_layer_assets
from symbol_pipeline.defs.symbols.jobs import factor_returns_job, symbol_layer_job
from symbol_pipeline.runs.keys import range_tags
from symbol_pipeline.sources.base import FetchResult, PriceSource
from symbol_pipeline.sources.synthetic import SyntheticMarket
from symbol_pipeline.storage import betas as beta_store
from symbol_pipeline.storage import latest, universe
from symbol_pipeline.storage.schema import symbol_fetch_failures
from symbol_pipeline_tests.conftest import HISTORY_START

YESTERDAY, TODAY = dt.date(2024, 6, 13), dt.date(2024, 6, 14)
SYMBOLS = ["AAPL", "MSFT", "NVDA"]


class FailsFor(PriceSource):
    """The synthetic market, except that `broken` symbols fail as a real outage would."""

    name = "synthetic"

    def __init__(self, broken: set[str]):
        self.inner, self.broken = SyntheticMarket(seed=7, n_symbols=350), broken

    def fetch(self, symbols, start, end):
        result = self.inner.fetch([s for s in symbols if s not in self.broken], start, end)
        failures = {**result.failures, **{s: "HTTP 503 from the price source" for s in symbols if s in self.broken}}
        return FetchResult(result.prices, failures)


class FlakySourceResource(PriceSourceResource):
    broken: list[str] = []

    def build_source(self) -> PriceSource:
        return FailsFor(set(self.broken))


def _defs(url: str, broken: list[str]) -> dg.Definitions:
    return dg.Definitions(
        assets=build_symbol_layer_assets(trading_date_partitions(HISTORY_START)),
        jobs=[factor_returns_job, symbol_layer_job],
        resources={
            "database": DatabaseResource(url=url),
            "price_source": FlakySourceResource(broken=broken),
        },
    )


def _run(url, instance, day, broken):
    tags = range_tags(day.isoformat(), day.isoformat(), SYMBOLS[0], SYMBOLS[-1])
    return _defs(url, broken).resolve_job_def("symbol_layer_job").execute_in_process(
        instance=instance, tags=tags, raise_on_error=False
    )


def test_one_failing_symbol(ops_env, env_engine, instance, capsys):
    from symbol_pipeline import cli

    instance.add_dynamic_partitions("symbol", SYMBOLS)
    with env_engine.begin() as conn:
        universe.add_symbols(conn, SYMBOLS, status=universe.STATUS_ACTIVE)
    assert _run(ops_env, instance, YESTERDAY, broken=[]).success

    today = _run(ops_env, instance, TODAY, broken=["MSFT"])
    assert today.success  # one symbol's outage does not fail the universe's run

    with env_engine.connect() as conn:
        failures = conn.execute(sa.select(symbol_fetch_failures).where(symbol_fetch_failures.c.symbol == "MSFT")).all()
        today_betas = beta_store.read_exposures(conn, TODAY, SYMBOLS)
        yesterday_betas = beta_store.read_exposures(conn, YESTERDAY, ["MSFT"])
        msft, aapl = universe.symbol_status(conn, "MSFT"), universe.symbol_status(conn, "AAPL")
    assert failures and failures[-1].reason == "HTTP 503 from the price source"
    assert failures[-1].requested_end == TODAY
    for symbol in ("AAPL", "NVDA"):
        assert today_betas[today_betas.symbol == symbol].beta.notna().all()
    assert today_betas[today_betas.symbol == "MSFT"].beta.isna().all()
    assert len(yesterday_betas) == 12 and yesterday_betas.beta.notna().all()
    # Still active (an outage is not an unknown ticker), but its betas are a session behind.
    assert msft.status == "active" and msft.last_factor_date == YESTERDAY and msft.last_price_date == YESTERDAY
    assert aapl.last_factor_date == TODAY
    assert msft.stale and not aapl.stale

    # What a reader gets for MSFT as of today: yesterday's betas, flagged stale.
    with env_engine.connect() as conn:
        betas, dates = latest.latest_betas(conn, ["MSFT"], TODAY, TODAY)
    assert (betas == betas).all()  # no NaN: every factor served
    assert {str(d)[:10] for d in dates.ravel()} == {YESTERDAY.isoformat()}

    assert cli.main(["symbols", "status", "MSFT"]) == 0
    line = capsys.readouterr().out
    assert "active" in line and f"last factors {YESTERDAY} (stale: the universe is at {TODAY})" in line
