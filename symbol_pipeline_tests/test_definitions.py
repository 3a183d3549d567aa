"""The real Definitions load in every environment the project supports."""

import dagster as dg
import pytest
import sqlalchemy as sa

from symbol_pipeline.definitions import build_definitions
from symbol_pipeline.sources.csv_dir import CsvDirectorySource
from symbol_pipeline.sources.synthetic import SyntheticMarket
from symbol_pipeline.sources.yfinance_source import YFinanceSource

SYMBOL_ASSETS = {
    "symbol_prices", "factor_returns", "market_beta", "ir_beta", "ridge_factor_betas",
    "spread_factor_betas", "symbol_daily_metrics",
}


@pytest.mark.parametrize("source", ["synthetic:11", "csv", "yfinance"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_definitions_load_per_environment(monkeypatch, tmp_path, request, source, backend):
    """Definitions are rebuilt from each environment, and the resources they hold work there."""
    monkeypatch.setenv("SYMBOL_PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SYMBOL_PIPELINE_SYNTHETIC_SYMBOLS", "7")
    if source == "csv":
        (tmp_path / "prices").mkdir()
        (tmp_path / "prices" / "ABC.csv").write_text("Date,Adj Close\n2024-06-27,10\n2024-06-28,11\n")
        monkeypatch.setenv("SYMBOL_PIPELINE_PRICE_SOURCE", f"csv:{tmp_path / 'prices'}")
    else:
        monkeypatch.setenv("SYMBOL_PIPELINE_PRICE_SOURCE", source)
    if backend == "postgresql":
        url = request.getfixturevalue("new_pg_database")("sp_defs")
        monkeypatch.setenv("SYMBOL_PIPELINE_DATABASE_URL", url.replace("postgresql+psycopg2://", "postgresql://"))
    else:
        monkeypatch.delenv("SYMBOL_PIPELINE_DATABASE_URL", raising=False)
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    keys = {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}
    assert SYMBOL_ASSETS | {"portfolio_factor_exposures", "portfolio_stress_tests"} <= keys
    for job in ("symbol_layer_job", "factor_returns_job", "portfolio_exposures_job"):
        assert defs.resolve_job_def(job)
    assert defs.resolve_schedule_def("symbol_daily_schedule")
    for sensor in ("symbol_onboarding_sensor", "position_change_sensor", "run_failure_sensor"):
        assert defs.resolve_sensor_def(sensor)
    # Touch the resources as a run would get them (EnvVar values resolved by Dagster).
    with dg.build_resources({k: defs.resources[k] for k in ("database", "price_source")}) as resources:
        engine = resources.database.engine()
        assert engine.dialect.name == backend
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM symbol_universe")).scalar() >= 0
        price_source = resources.price_source.source()
    expected = {"synthetic:11": SyntheticMarket, "csv": CsvDirectorySource, "yfinance": YFinanceSource}[source]
    assert isinstance(price_source, expected)
    if source == "synthetic:11":
        assert len(price_source.universe()) == 7
    if source == "csv":
        assert price_source.available_symbols() == ["ABC"]


def test_a_bad_price_source_fails_at_load(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMBOL_PIPELINE_PRICE_SOURCE", "bloomberg")
    with pytest.raises(ValueError, match="valid forms"):
        build_definitions()


def test_partitions_start_from_the_settings(monkeypatch):
    monkeypatch.setenv("SYMBOL_PIPELINE_PARTITIONS_START", "2024-01-02")
    node = build_definitions().resolve_asset_graph().get(dg.AssetKey("market_beta"))
    dates = node.partitions_def.get_partitions_def_for_dimension("date")
    assert dates.get_first_partition_key() == "2024-01-02"


def test_betas_depend_on_the_same_date_and_symbol_only():
    """A beta on D depends on its symbol's price partition on D (the window before it is history
    read from storage), never on every symbol's: a backfill of D runs D's six assets together."""
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("market_beta"))
    mapping = graph.get_partition_mapping(node.key, dg.AssetKey("symbol_prices"))
    upstream = graph.get(dg.AssetKey("symbol_prices")).partitions_def
    downstream = node.partitions_def
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbol", ["AAA", "BBB"])
        key = dg.MultiPartitionKey({"date": "2024-12-31", "symbol": "AAA"})
        from dagster._core.definitions.partitions.context import partition_loading_context

        with partition_loading_context(dynamic_partitions_store=instance):
            subset = downstream.empty_subset().with_partition_keys([key])
            result = mapping.get_upstream_mapped_partitions_result_for_partitions(subset, downstream, upstream)
            keys = list(result.partitions_subset.get_partition_keys())
    assert keys == [key]


def test_module_level_defs_is_the_built_definitions():
    from symbol_pipeline import definitions

    assert isinstance(definitions.defs, dg.Definitions)


def test_every_job_logs_at_info_unless_a_run_asks_for_more():
    """Backfills and sensors launch the implicit asset job: its console logger must not print
    one DEBUG line per partition event either."""
    defs = build_definitions()
    jobs = [defs.resolve_implicit_global_asset_job_def(), defs.resolve_job_def("symbol_layer_job")]
    for job in jobs:
        default = job.loggers["console"].config_schema.as_field().default_value
        assert default["log_level"] == "INFO", job.name
