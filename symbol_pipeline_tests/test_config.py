"""The settings: defaults that work offline on a fresh clone, PostgreSQL URLs pinned to the
installed driver, and a bad value refused with the variable's name before any work."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from symbol_pipeline import config


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No SYMBOL_PIPELINE_* variable set, in an empty folder."""
    for name in [n for n in os.environ if n.startswith("SYMBOL_PIPELINE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_a_fresh_clone_gets_sqlite_in_data_and_the_synthetic_market(clean_env, tmp_path):
    settings = config.get_settings()
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'symbol_pipeline.sqlite'}"
    assert not settings.is_postgres
    assert settings.price_source == "synthetic"
    assert settings.partitions_start is None and settings.window_rule.pinned_start is None
    assert settings.alert_webhook_url is None and settings.scenarios_file is None
    assert (settings.import_max_bytes, settings.import_max_rows) == (16 * 1024 * 1024, 10_000)


@pytest.mark.parametrize("url", ["postgres://u@db:5432/sp", "postgresql://u@db:5432/sp"])
def test_postgresql_urls_are_pinned_to_psycopg2(clean_env, url):
    clean_env.setenv("SYMBOL_PIPELINE_DATABASE_URL", url)
    settings = config.get_settings()
    assert settings.database_url == "postgresql+psycopg2://u@db:5432/sp"
    assert settings.is_postgres


def test_a_pinned_first_date_is_the_windows_rule(clean_env):
    clean_env.setenv("SYMBOL_PIPELINE_PARTITIONS_START", "2024-03-01")
    clean_env.setenv("SYMBOL_PIPELINE_PARTITION_SESSIONS", "40")
    rule = config.get_settings().window_rule
    assert (rule.pinned_start, rule.sessions) == (dt.date(2024, 3, 1), 40)


@pytest.mark.parametrize("name, value, message", [
    ("SYMBOL_PIPELINE_PARTITIONS_START", "03/01/2024", "must be a date in YYYY-MM-DD form, got '03/01/2024'"),
    ("SYMBOL_PIPELINE_ONBOARDING_DAILY_CAP", "many", "must be an integer, got 'many'"),
    ("SYMBOL_PIPELINE_DELISTED_AFTER_SESSIONS", "0", "must be at least 1, got 0"),
    ("SYMBOL_PIPELINE_API_MAX_IMPORT_ROWS", "-5", "must be at least 1, got -5"),
    ("SYMBOL_PIPELINE_SYMBOL_RETRY_DELAY_HOURS", "soon", "must be a number, got 'soon'"),
    ("SYMBOL_PIPELINE_SYMBOL_RETRY_DELAY_HOURS", "0", r"must be a number of hours in \(0, 8760\), got '0'"),
])
def test_a_bad_value_names_the_variable(clean_env, name, value, message):
    clean_env.setenv(name, value)
    with pytest.raises(ValueError, match=f"^{name} {message}$"):
        config.get_settings()


def test_the_batching_switches_are_set_unless_the_environment_chose(monkeypatch):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "50")
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "x")
    monkeypatch.delenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS")  # restored after the test
    config.apply_dagster_event_settings()
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "50"
    assert os.environ["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] == "true"


def test_dates_are_read_as_every_input_writes_them():
    assert config.parse_date("2024-06-28") == dt.date(2024, 6, 28)
    with pytest.raises(ValueError, match="^not a date in YYYY-MM-DD form: '2024-6-28'$"):
        config.parse_date("2024-6-28")
