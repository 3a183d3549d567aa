import contextlib
import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from symbol_pipeline.definitions import build_definitions
from symbol_pipeline.runs.instance import INSTANCE_CLASS, sqlite_storage
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.dialect import cached_engine

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


# --- databases -------------------------------------------------------------------------------
PG_ADMIN_URL = os.environ.get("SYMBOL_PIPELINE_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
# A fixed first date partition for tests that need long ranges (the default range moves with the calendar).
# Close to the tests' sessions (2024-03 to 2024-12): a run records the history it loads inside the
# range as materialisations, one event each, so a long range only makes the tests slower.
HISTORY_START = "2024-03-01"


@pytest.fixture(autouse=True)
def _fixed_partitions_start(monkeypatch):
    """Tests run on fixed historical sessions; a test of the rolling default deletes this."""
    monkeypatch.setenv("SYMBOL_PIPELINE_PARTITIONS_START", HISTORY_START)


def pg_available() -> bool:
    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def new_pg_database() -> Iterator[Callable[[str], str]]:
    """Factory of fresh PostgreSQL databases (dropped at the end of the session)."""
    if not pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 but CI must test against it")
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432")
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def create(prefix: str = "sp_test") -> str:
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    yield create
    cached_engine.cache_clear()
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'symbol_pipeline.sqlite'}"
    return request.getfixturevalue("new_pg_database")("sp_test")


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


def pg_database_url(name: str) -> str:
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
