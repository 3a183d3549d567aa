import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from symbol_pipeline.definitions import build_definitions
from symbol_pipeline.runs.instance import INSTANCE_CLASS, sqlite_storage
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.dialect import cached_engine
from symbol_pipeline_tests.serve_process import ServedApi, served_api

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def real_prices_dir() -> Path:
    """The shared real adjusted closes (read in place, never copied into the repo)."""
    path = REPO_ROOT.parent / "shared" / "data" / "real-prices"
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real prices not found at {path}: CI must hold the kernels to them")
        pytest.skip(f"real prices not found at {path}")
    return path


# --- databases: symbol_pipeline_tests/databases.py, one stack for the suite ----------------------
pytest_plugins = ["symbol_pipeline_tests.databases"]

# A fixed first date partition for tests that need long ranges (the default range moves with the calendar).
# Close to the tests' sessions (2024-03 to 2024-12): a run records the history it loads inside the
# range as materialisations, one event each, so a long range only makes the tests slower.
HISTORY_START = "2024-03-01"


@pytest.fixture(autouse=True)
def _fixed_partitions_start(monkeypatch):
    """Tests run on fixed historical sessions; a test of the rolling default deletes this."""
    monkeypatch.setenv("SYMBOL_PIPELINE_PARTITIONS_START", HISTORY_START)


@pytest.fixture(scope="session")
def sqlite_api_server(tmp_path_factory) -> Iterator[ServedApi]:
    """`symbol-pipeline serve` on a SQLite file, for the session (serve_process.py)."""
    folder = tmp_path_factory.mktemp("sqlite_api_server")
    yield from served_api(f"sqlite:///{folder / 'served.sqlite'}", folder, "sqlite")


@pytest.fixture(scope="session")
def pg_api_server(new_pg_database, tmp_path_factory) -> Iterator[ServedApi]:
    """`symbol-pipeline serve` on a database of its own on the PostgreSQL server, for the session."""
    yield from served_api(new_pg_database("sp_served"), tmp_path_factory.mktemp("pg_api_server"), "postgresql")


@pytest.fixture
def pipeline_env(tmp_path, monkeypatch) -> Path:
    """An isolated data directory and Dagster home for a test: SQLite, synthetic market, no network."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SYMBOL_PIPELINE_DATA_DIR", str(data))
    monkeypatch.delenv("SYMBOL_PIPELINE_DATABASE_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("SYMBOL_PIPELINE_PRICE_SOURCE", "synthetic")
    monkeypatch.setenv("SYMBOL_PIPELINE_SYNTHETIC_SYMBOLS", "20")
    monkeypatch.chdir(tmp_path)
    return data


# --- environments for Dagster tests: a fresh database, the settings the project reads, an instance
BATCHING_ENV = {"DAGSTER_EVENT_BATCH_SIZE": "1000", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


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
def env_engine(request):
    """The engine of the database the test's environment (`ops_env` or `sqlite_env`) names, its
    schema created: the database the pipeline itself reads and writes in that test."""
    for name in ("ops_env", "sqlite_env"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
    from symbol_pipeline.config import get_settings

    engine = get_engine(get_settings().database_url)
    yield engine
    engine.dispose()
    cached_engine.cache_clear()


@contextlib.contextmanager
def batching_instance(path: Path) -> Iterator[dg.DagsterInstance]:
    """A test instance on the quick start's storage: its SQLite event log writes a step's partition
    events in one transaction (runs/sqlite_events.py), as the project's instance does."""
    path.mkdir(parents=True, exist_ok=True)
    overrides = {**sqlite_storage(path), "instance_class": INSTANCE_CLASS}
    with dg.instance_for_test(temp_dir=str(path), overrides=overrides) as inst:
        yield inst


@pytest.fixture
def instance(tmp_path: Path):
    with batching_instance(tmp_path / "dagster_instance") as inst:
        yield inst


@pytest.fixture
def defs(request):
    """The real Definitions, built after the test's environment is set."""
    for name in ("ops_env", "sqlite_env"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
    return build_definitions()
