"""The API's settings are read one way: `api_settings`, through `config.get_settings`."""

import datetime as dt
import re
from pathlib import Path

from symbol_pipeline.api.settings import ApiSettings, api_settings
from symbol_pipeline.config import DEFAULT_AUTH_CACHE_SECONDS, get_settings
from symbol_pipeline.services import portfolio as service
from symbol_pipeline.services.window import WindowRule

API = Path(__file__).resolve().parents[2] / "symbol_pipeline" / "api"


def test_every_api_setting_comes_from_the_environment_through_config(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMBOL_PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SYMBOL_PIPELINE_DATABASE_URL", raising=False)
    for name, value in {
        "SYMBOL_PIPELINE_AUTH_CACHE_SECONDS": "2.5", "SYMBOL_PIPELINE_SCENARIOS_FILE": "extra.yaml",
        "SYMBOL_PIPELINE_API_MAX_BODY_BYTES": "4096", "SYMBOL_PIPELINE_API_MAX_IMPORT_BYTES": "8192",
        "SYMBOL_PIPELINE_API_MAX_IMPORT_ROWS": "12", "SYMBOL_PIPELINE_API_HEADER_TIMEOUT_SECONDS": "3",
        "SYMBOL_PIPELINE_ONBOARDING_DAILY_CAP": "7", "SYMBOL_PIPELINE_PARTITIONS_START": "2024-01-02",
    }.items():
        monkeypatch.setenv(name, value)
    assert api_settings() == ApiSettings(
        database_url=f"sqlite:///{tmp_path / 'symbol_pipeline.sqlite'}", data_dir=tmp_path, auth_cache_seconds=2.5,
        scenarios_file="extra.yaml", max_body_bytes=4096, max_import_bytes=8192, max_import_rows=12,
        header_timeout_seconds=3.0, onboarding_daily_cap=7,
        window_rule=WindowRule(pinned_start=dt.date(2024, 1, 2), sessions=get_settings().partition_sessions),
    )
    assert api_settings("sqlite:///other.db").database_url == "sqlite:///other.db"


def test_the_defaults_are_the_services_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMBOL_PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SYMBOL_PIPELINE_AUTH_CACHE_SECONDS", raising=False)
    assert DEFAULT_AUTH_CACHE_SECONDS == service.DEFAULT_AUTH_CACHE_SECONDS
    assert api_settings().auth_cache_seconds == ApiSettings("", tmp_path).auth_cache_seconds == DEFAULT_AUTH_CACHE_SECONDS


def test_no_other_api_module_reads_the_environment():
    readers = [path.relative_to(API).as_posix() for path in API.rglob("*.py")
               if re.search(r"\bos\.(environ|getenv)\b|\bget_settings\b", path.read_text())]
    assert readers == ["settings.py"]
