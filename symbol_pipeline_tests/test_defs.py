"""The real Definitions load in every environment the project supports."""

import pytest

import dagster as dg

from symbol_pipeline.definitions import build_definitions

SYMBOL_ASSETS = {
    "symbol_prices", "factor_returns", "market_beta", "ir_beta", "ridge_factor_betas",
    "spread_factor_betas", "symbol_daily_metrics",
}


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"SYMBOL_PIPELINE_PRICE_SOURCE": "yfinance"},
        {"SYMBOL_PIPELINE_PRICE_SOURCE": "csv:/tmp/prices"},
        {"SYMBOL_PIPELINE_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres"},
    ],
    ids=["default", "yfinance", "csv", "postgres"],
)
def test_definitions_load(monkeypatch, tmp_path, env):
    monkeypatch.setenv("SYMBOL_PIPELINE_DATA_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    keys = {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}
    assert SYMBOL_ASSETS | {"portfolio_factor_exposures", "portfolio_stress_tests"} <= keys
    for job in ("symbol_layer_job", "factor_returns_job", "portfolio_exposures_job"):
        assert defs.resolve_job_def(job)
    assert defs.resolve_schedule_def("symbol_daily_schedule")
    for sensor in ("symbol_onboarding_sensor", "position_change_sensor", "run_failure_sensor"):
        assert defs.resolve_sensor_def(sensor)
    database = defs.resources["database"]
    assert database.url.startswith("postgresql+psycopg2://" if "SYMBOL_PIPELINE_DATABASE_URL" in env else "sqlite:///")


def test_betas_depend_on_a_window_of_their_own_symbol_only():
    """A beta on D needs its symbol's prices over the longest window, never every symbol's."""
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("market_beta"))
    mapping = node.partition_mappings[dg.AssetKey("symbol_prices")]
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
    assert {k.split("|")[1] for k in keys} == {"AAA"}
    assert len(keys) == 181  # 180 sessions before D and D itself
    assert min(keys).startswith("2024-04-1")


def test_module_level_defs_is_the_built_definitions():
    from symbol_pipeline import definitions

    assert isinstance(definitions.defs, dg.Definitions)
