"""Symbol-layer assets through Dagster: range runs, metadata, checks and partition status."""

import datetime as dt

import dagster as dg
import pytest
import sqlalchemy as sa

from symbol_pipeline.definitions import build_definitions
from symbol_pipeline.lib.factors import FACTOR_NAMES, REGRESSOR_ETFS
from symbol_pipeline.runs.submit import register_symbols, run_symbol_layer
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.schema import symbol_daily_metrics, symbol_factor_exposures
from symbol_pipeline_tests.conftest import batching_instance

DAY = dt.date(2024, 6, 28)
SYMBOLS = ["AAPL", "NEE", "JPM", "XOM", "KO", "NVDA"]


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, pipeline_env, monkeypatch):
    if request.param == "postgresql":
        monkeypatch.setenv("SYMBOL_PIPELINE_DATABASE_URL", request.getfixturevalue("new_pg_database")("sp_assets"))
    from symbol_pipeline.config import get_settings

    return get_settings()


def _materialisations(instance, asset: str):
    return instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records


def test_one_date_for_many_symbols_in_one_run(env, tmp_path):
    run_symbols = [*SYMBOLS, *REGRESSOR_ETFS]
    with batching_instance(tmp_path / "dagster") as instance:
        register_symbols(instance, run_symbols)
        result = run_symbol_layer(instance, build_definitions(env), DAY, DAY, None)
        assert result.success and len(result.run_ids) == 2  # factor_returns, then one symbol-layer run
        betas = _materialisations(instance, "market_beta")
        assert len(betas) == len(run_symbols)
        metadata = betas[0].asset_materialization.metadata
        for name in ("symbols_computed", "insufficient_data", "capped", "median_r2_market_beta", "seconds"):
            assert name in metadata, name
        assert metadata["symbols_computed"].value == len(run_symbols)
        checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("market_beta"), "betas_finite_and_covered")]
        )
        assert checks, "the beta check ran in the same run"
    engine = get_engine(env.database_url)
    with engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).select_from(symbol_factor_exposures).where(symbol_factor_exposures.c.date == DAY)
        ).scalar()
        metrics = conn.execute(sa.select(sa.func.count()).select_from(symbol_daily_metrics)).scalar()
    assert count == len(run_symbols) * len(FACTOR_NAMES)
    assert metrics == len(run_symbols)


def test_one_symbol_over_many_dates_in_one_run(env, tmp_path):
    first, last = dt.date(2024, 6, 3), dt.date(2024, 6, 28)
    with batching_instance(tmp_path / "dagster") as instance:
        register_symbols(instance, [*REGRESSOR_ETFS, "NEE", "KO"])
        result = run_symbol_layer(instance, build_definitions(env), first, last, ["NEE"])
        assert result.success and len(result.run_ids) == 2
        materialised = {r.partition_key for r in _materialisations(instance, "ir_beta")}
        assert "2024-06-19|NEE" not in materialised  # Juneteenth: no partition
        assert len(materialised) == 19 and all(k.endswith("|NEE") for k in materialised)
    with get_engine(env.database_url).connect() as conn:
        dates = conn.execute(
            sa.select(symbol_factor_exposures.c.date).where(
                symbol_factor_exposures.c.symbol == "NEE", symbol_factor_exposures.c.factor == "market_beta"
            )
        ).scalars().all()
        others = conn.execute(
            sa.select(sa.func.count()).select_from(symbol_factor_exposures).where(symbol_factor_exposures.c.symbol == "KO")
        ).scalar()
    assert len(dates) == 19
    assert others == 0  # KO was not in the run's range
