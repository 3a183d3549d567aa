"""Fixtures for the operations tests: a fresh database per test (SQLite or PostgreSQL), the
environment the project reads, and a persistent Dagster instance in tmp_path."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg
import pytest

BATCHING_ENV = {"DAGSTER_EVENT_BATCH_SIZE": "1000", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def pg_url(name: str) -> str:
    from symbol_pipeline_tests.conftest import PG_ADMIN_URL

    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def fresh_pg_database(new_pg_database):
    """Factory of fresh PostgreSQL databases by name (the root conftest creates and drops them)."""
    return lambda prefix="sp_ops_t": new_pg_database(prefix).rsplit("/", 1)[1]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'symbol_pipeline.sqlite'}"


def _set_env(monkeypatch, tmp_path: Path, url: str) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("SYMBOL_PIPELINE_DATABASE_URL", url)
    monkeypatch.setenv("SYMBOL_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SYMBOL_PIPELINE_PRICE_SOURCE", "synthetic")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("SYMBOL_PIPELINE_ALERT_WEBHOOK_URL", raising=False)
    for key, value in BATCHING_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def ops_env(monkeypatch, tmp_path: Path, database_url: str) -> str:
    """Environment for one test on `database_url`; returns the URL."""
    _set_env(monkeypatch, tmp_path, database_url)
    return database_url


@pytest.fixture
def sqlite_env(monkeypatch, tmp_path: Path, sqlite_url: str) -> str:
    _set_env(monkeypatch, tmp_path, sqlite_url)
    return sqlite_url


@pytest.fixture
def engine(request):
    """The project engine for the test's environment (schema created)."""
    for name in ("ops_env", "sqlite_env"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
    from symbol_pipeline.storage.database import get_engine
    from symbol_pipeline.storage.engine import cached_engine

    engine = get_engine()
    yield engine
    engine.dispose()
    cached_engine.cache_clear()


@pytest.fixture
def instance(tmp_path: Path):
    path = tmp_path / "dagster_instance"
    path.mkdir()
    with dg.DagsterInstance.local_temp(str(path)) as inst:
        yield inst


@pytest.fixture
def defs(request):
    """The real Definitions, built after the test's environment is set."""
    for name in ("ops_env", "sqlite_env"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
    from symbol_pipeline.definitions import build_definitions

    return build_definitions()
