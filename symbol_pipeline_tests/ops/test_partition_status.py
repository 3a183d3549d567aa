"""Dagster's partition status equals what the database holds, through the instance's own status
API (the one the UI's partitions page reads): after the quick start, after a backfill of the
missing partitions, after an onboarding, and for a session without a price.

The quick-start instance: SQLite, the synthetic market, the repository's dagster.yaml storage
(runs.instance.get_instance), a rolling range of a few sessions.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from symbol_pipeline.cli.main import main as cli
from symbol_pipeline.lib.factors import BETA_GROUPS
from symbol_pipeline.runs.keys import date_symbol_key
from symbol_pipeline.storage import coverage
from symbol_pipeline.storage.database import get_engine

SYMBOL_ASSETS = ["symbol_prices", *BETA_GROUPS, "symbol_daily_metrics"]
SESSIONS = 4


@pytest.fixture
def quick_start(monkeypatch, tmp_path):
    """The quick start's environment: nothing set but a small universe and a short range."""
    monkeypatch.chdir(tmp_path)
    for name in ("DAGSTER_HOME", "SYMBOL_PIPELINE_DATABASE_URL", "SYMBOL_PIPELINE_PARTITIONS_START",
                 "SYMBOL_PIPELINE_ALERT_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SYMBOL_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SYMBOL_PIPELINE_PRICE_SOURCE", "synthetic")
    monkeypatch.setenv("SYMBOL_PIPELINE_SYNTHETIC_SYMBOLS", "12")
    monkeypatch.setenv("SYMBOL_PIPELINE_PARTITION_SESSIONS", str(SESSIONS))
    yield tmp_path


def _state():
    # Imported per call: the settings (and so the partitions) are read from the test's environment.
    from symbol_pipeline.config import get_settings
    from symbol_pipeline.definitions import build_definitions
    from symbol_pipeline.runs.instance import get_instance

    settings = get_settings()
    return settings, build_definitions(settings), get_instance(settings.data_dir)


def _stored(engine, asset: str, dates: list[dt.date]) -> set[str]:
    """The partition keys of `asset` in the range that hold a row in the database."""
    with engine.connect() as conn:
        if asset == "symbol_prices":
            frame = coverage.price_keys(conn, None, dates[0], dates[-1])
        elif asset == "symbol_daily_metrics":
            frame = coverage.metric_keys(conn, None, dates[0], dates[-1])
        else:
            frame = coverage.beta_keys(conn, None, dates[0], dates[-1])
            frame = frame[frame["factor"].isin(BETA_GROUPS[asset])]
    return {str(date_symbol_key(d, s)) for d, s in zip(frame["date"], frame["symbol"])}


def _status(asset: str):
    """(defined, materialised, failed) keys, as the UI's partition status cache has them."""
    settings, defs, instance = _state()
    key = dg.AssetKey(asset)
    partitions = defs.resolve_assets_def(key).partitions_def
    defined = set(partitions.get_partition_keys(dynamic_partitions_store=instance))
    cached = get_and_update_asset_status_cache_value(instance, key, partitions)
    materialised = set(cached.deserialize_materialized_partition_subsets(partitions).get_partition_keys())
    failed = set(cached.deserialize_failed_partition_subsets(partitions).get_partition_keys())
    # The instance's other status call agrees with the UI's cache.
    assert materialised == set(instance.get_materialized_partitions(key)) & defined
    return defined, materialised, failed


def _assert_status_is_data() -> dict[str, int]:
    """For every symbol asset, materialised == stored within the defined range; missing counts."""
    settings, _, _ = _state()
    engine = get_engine(settings.database_url)
    missing = {}
    for asset in SYMBOL_ASSETS:
        defined, materialised, failed = _status(asset)
        dates = sorted({dt.date.fromisoformat(k.split("|")[0]) for k in defined})
        stored = _stored(engine, asset, dates) & defined
        assert materialised == stored, (asset, sorted(materialised ^ stored)[:10])
        assert not failed, (asset, sorted(failed)[:10])
        missing[asset] = len(defined - materialised)
    engine.dispose()
    return missing


@pytest.mark.slow
def test_status_equals_data_after_quick_start_backfill_and_onboarding(quick_start):
    assert cli(["run"]) == 0
    missing = _assert_status_is_data()
    # The first run stored the range's prices as history: recorded, so none is missing; its
    # betas and metrics are for the last session only.
    assert missing["symbol_prices"] == 0
    # factor_returns (dates only): every session of the range, whose ETF closes the run stored.
    defined, materialised, failed = _status("factor_returns")
    assert materialised == defined and not failed
    settings, defs, instance = _state()
    symbols = instance.get_dynamic_partitions("symbol")
    assert missing["market_beta"] == (SESSIONS - 1) * len(symbols)

    # "Backfill missing" over the whole default range, through the instance: nothing stays missing.
    first = min(k.split("|")[0] for k in _status("market_beta")[0])
    last = max(k.split("|")[0] for k in _status("market_beta")[0])
    assert cli(["backfill", "--start", first, "--end", last]) == 0
    assert set(_assert_status_is_data().values()) == {0}

    # A symbol whose onboarding fails (the source does not know it): its partitions exist and hold
    # nothing, so they are missing, not materialised, and the other symbols' stay as they were.
    assert cli(["symbols", "add", "SYN0013"]) == 0
    cli(["onboard"])
    missing = _assert_status_is_data()
    assert missing == dict.fromkeys(SYMBOL_ASSETS, SESSIONS)
