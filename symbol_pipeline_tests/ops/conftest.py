"""Fixtures for the operations tests: a fresh database per test (SQLite or PostgreSQL), the
environment the project reads, and a persistent Dagster instance in tmp_path."""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path

import dagster as dg
import pytest

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
BATCHING_ENV = {"DAGSTER_EVENT_BATCH_SIZE": "1000", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def pg_url(name: str) -> str:
    return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def _admin():
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    return conn


def postgres_available() -> bool:
    try:
        _admin().close()
        return True
    except Exception:  # noqa: BLE001
        return False


def create_pg_database(prefix: str = "sp_ops_t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name


def drop_pg_database(name: str) -> None:
    """Drop one of this suite's own databases (never anyone else's: the name is ours)."""
    assert name.startswith("sp_ops_")
    from symbol_pipeline.storage.engine import cached_engine

    cached_engine.cache_clear()
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


@pytest.fixture
def fresh_pg_database():
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    names: list[str] = []

    def make(prefix: str = "sp_ops_t") -> str:
        names.append(create_pg_database(prefix))
        return names[-1]

    yield make
    for name in names:
        drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path: Path, fresh_pg_database) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'symbol_pipeline.sqlite'}"
    return pg_url(fresh_pg_database())


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


def with_operations(definitions: dg.Definitions) -> dg.Definitions:
    """The Definitions plus the schedules and sensors of this package (until definitions.py wires them)."""
    from symbol_pipeline.defs.symbols.schedules import SYMBOL_SCHEDULES
    from symbol_pipeline.defs.symbols.sensors import SYMBOL_SENSORS

    names = {s.name for s in definitions.schedules or []} | {s.name for s in definitions.sensors or []}
    extra = [d for d in (*SYMBOL_SCHEDULES, *SYMBOL_SENSORS) if d.name not in names]
    if not extra:
        return definitions
    return dg.Definitions.merge(
        definitions,
        dg.Definitions(
            schedules=[d for d in extra if isinstance(d, dg.ScheduleDefinition)],
            sensors=[d for d in extra if not isinstance(d, dg.ScheduleDefinition)],
        ),
    )
