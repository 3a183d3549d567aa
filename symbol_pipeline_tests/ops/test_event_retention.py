"""`events prune` bounds the event log on PostgreSQL and never turns a stored partition missing."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
import sqlalchemy as sa

from symbol_pipeline.cli.main import main as cli
from symbol_pipeline.config import get_settings
from symbol_pipeline.definitions import build_definitions
from symbol_pipeline.lib.factors import REGRESSOR_ETFS
from symbol_pipeline.runs.retention import prune_instance_events
from symbol_pipeline.runs.submit import register_symbols, run_symbol_layer
from symbol_pipeline.sources.synthetic import SyntheticMarket
from symbol_pipeline_tests.conftest import BATCHING_ENV

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ASSETS = ["factor_returns", "symbol_prices", "market_beta", "ir_beta", "ridge_factor_betas", "spread_factor_betas",
          "symbol_daily_metrics"]
DAY = dt.date(2024, 6, 14)


def _events(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM event_logs")).scalar()
    engine.dispose()
    return int(count)


def test_prune_keeps_every_partition_and_the_latest_metadata(tmp_path, monkeypatch, new_pg_database):
    dagster_url, data_url = new_pg_database("sp_retention_dagster"), new_pg_database("sp_retention_data")
    home = tmp_path / "home"
    home.mkdir()
    # deploy/dagster.yaml's storages: Dagster's PostgreSQL run storage, the project's event log.
    (home / "dagster.yaml").write_text(
        f"run_storage:\n  module: dagster_postgres.run_storage\n  class: PostgresRunStorage\n"
        f"  config:\n    postgres_url: {dagster_url}\n"
        f"event_log_storage:\n  module: symbol_pipeline.runs.pg_events\n  class: BatchingPostgresEventLogStorage\n"
        f"  config:\n    postgres_url: {dagster_url}\n"
        "telemetry:\n  enabled: false\n"
    )
    for key, value in {**BATCHING_ENV, "DAGSTER_HOME": str(home), "SYMBOL_PIPELINE_DATABASE_URL": data_url,
                       "SYMBOL_PIPELINE_PRICE_SOURCE": "synthetic", "SYMBOL_PIPELINE_SYNTHETIC_SYMBOLS": "6",
                       "SYMBOL_PIPELINE_DATA_DIR": str(tmp_path / "data")}.items():
        monkeypatch.setenv(key, value)
    defs = build_definitions(get_settings())
    with dg.DagsterInstance.get() as instance:
        register_symbols(instance, [*REGRESSOR_ETFS, *SyntheticMarket(seed=7, n_symbols=6).universe()])
        for _ in range(2):  # the second run supersedes every materialisation of the first
            assert run_symbol_layer(instance, defs, DAY, DAY, None).success
        before = {name: set(instance.get_materialized_partitions(dg.AssetKey(name))) for name in ASSETS}
        latest = instance.get_latest_materialization_event(dg.AssetKey("market_beta"))
        events = _events(dagster_url)

        removed = prune_instance_events(instance, older_than_days=-1)  # everything counts as old

        assert removed["superseded_materialisations"] > 0 and removed["step_and_log_events"] > 0
        assert _events(dagster_url) < events
        for name in ASSETS:
            instance.event_log_storage.wipe_asset_cached_status(dg.AssetKey(name))  # rebuilt from what is left
            assert set(instance.get_materialized_partitions(dg.AssetKey(name))) == before[name], name
        kept = instance.get_latest_materialization_event(dg.AssetKey("market_beta"))
        assert kept.asset_materialization.metadata == latest.asset_materialization.metadata
        assert "symbols_computed" in kept.asset_materialization.metadata

    # The command: one line of counts; on the SQLite default, one line saying why not.
    assert cli(["events", "prune", "--older-than", "30"]) == 0
    monkeypatch.delenv("DAGSTER_HOME")
    assert cli(["events", "prune"]) == 1
