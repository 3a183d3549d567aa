import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

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


def pg_available() -> bool:
    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no server"
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
    from symbol_pipeline.storage.engine import cached_engine

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
