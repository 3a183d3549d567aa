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


@pytest.mark.parametrize("with_repository_config", [True, False])
def test_runs_without_logger_config_print_no_debug_lines(tmp_path, monkeypatch, sqlite_env, capfd,
                                                         with_repository_config):
    """A backfill's or a sensor's run executes the implicit asset job with no `loggers` in its run
    config, so Dagster gives it its default console logger at the instance's `python_log_level`:
    the project's instance (dagster.yaml, or runs.instance without it) says INFO, so such a run
    prints no DEBUG line per partition event, and its events are stored all the same."""
    from pathlib import Path
    from shutil import copy

    from symbol_pipeline.runs.instance import get_instance

    if with_repository_config:
        copy(Path(__file__).resolve().parents[1] / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    defs = build_definitions()
    session = defs.resolve_assets_def("factor_returns").partitions_def.get_last_partition_key()
    with get_instance(tmp_path / "data") as instance:
        assert instance.python_log_level == "INFO"
        capfd.readouterr()
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey("factor_returns")], partition_key=session,
        )
        printed = capfd.readouterr()
        assert result.success
        assert instance.get_latest_materialization_event(dg.AssetKey("factor_returns")) is not None
    lines = (printed.out + printed.err).splitlines()
    assert not [line for line in lines if " - DEBUG - " in line], "\n".join(lines[:5])


_SWITCHES = ("DAGSTER_EVENT_BATCH_SIZE", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS")
_PROBE = """
import json, os, sys
import {module}
from dagster._core.instance.utils import _is_batch_writing_enabled
print(json.dumps({{"env": {{k: os.environ.get(k) for k in sys.argv[1:]}}, "batching": _is_batch_writing_enabled()}}))
"""


def _probe(module: str, tmp_path) -> dict:
    """What a fresh process has after importing `module` alone, started without the switches."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in _SWITCHES and not k.startswith("SYMBOL_PIPELINE_")}
    env.update({"SYMBOL_PIPELINE_DATA_DIR": str(tmp_path), "SYMBOL_PIPELINE_SYNTHETIC_SYMBOLS": "5"})
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run([sys.executable, "-c", _PROBE.format(module=module), *_SWITCHES], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_run_worker_gets_the_batching_switches_from_the_definitions(tmp_path):
    """A run worker's entry point is this module (`dagster api execute_run` imports it): importing
    it gives the process Dagster's batching switches, so the step's events are written in batches,
    though nothing else in the process set them."""
    probed = _probe("symbol_pipeline.definitions", tmp_path)
    assert probed == {"env": {"DAGSTER_EVENT_BATCH_SIZE": "1000",
                              "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}, "batching": True}


@pytest.mark.parametrize("module", ["symbol_pipeline.runs.pg_events", "symbol_pipeline.runs.sqlite_events",
                                    "symbol_pipeline.runs.instance"])
def test_the_layers_below_the_entry_points_write_no_environment(tmp_path, module):
    """The event-log storages read no settings: importing one leaves the environment as it was."""
    assert _probe(module, tmp_path) == {"env": dict.fromkeys(_SWITCHES), "batching": False}
