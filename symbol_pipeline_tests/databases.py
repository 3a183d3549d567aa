"""The tests' databases: one stack for the whole suite, loaded by the top conftest.py as a plugin.

A SQLite file in the test's folder, or databases of their own on the PostgreSQL server named by
`SYMBOL_PIPELINE_TEST_PG` (an administrator's URL; by default the local server's `postgres`
database, user postgres, trust authentication). Without that server a PostgreSQL test skips,
except under CI (`CI` set), where it fails: CI must hold the code to PostgreSQL.

One meaning per fixture name:

- `new_pg_database`: a factory of fresh, empty PostgreSQL databases (their URLs), dropped at the
  end of the session;
- `fresh_pg_database`: the same factory, returning the new database's name;
- `database_url`: a fresh, empty database (no schema) on each backend;
- `sqlite_url`: a SQLite file in the test's folder (no schema);
- `pg_url`: the session's PostgreSQL database, its schema created; `engine` and `pg_engine` empty
  it before each test;
- `engine`: an empty project database (schema and reference rows) on each backend;
- `pg_engine`: the same on PostgreSQL only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from symbol_pipeline.storage.database import all_metadata, ensure_schema
from symbol_pipeline.storage.dialect import cached_engine, make_engine

PG_ADMIN_URL = os.environ.get("SYMBOL_PIPELINE_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
# Each backend a test of both runs on; `-m "not postgres"` leaves the PostgreSQL ones out.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def pg_database_url(name: str) -> str:
    """The URL of database `name` on the tests' PostgreSQL server."""
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def pg_available() -> bool:
    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def require_pg() -> None:
    """Skip the test when the server is missing, or fail it under CI."""
    if pg_available():
        return
    where = PG_ADMIN_URL.rsplit("@", 1)[-1].rsplit("/", 1)[0]
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is not reachable at {where} but CI must test against it")
    pytest.skip(f"PostgreSQL not reachable at {where}")


@pytest.fixture(scope="session")
def new_pg_database() -> Iterator[Callable[[str], str]]:
    """Factory of fresh PostgreSQL databases, by URL (dropped at the end of the session)."""
    require_pg()
    # Pre-ping: the server may restart during a long session (the machine's other work does it), and
    # the databases must still be dropped at the end.
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    created: list[str] = []

    def create(prefix: str = "sp_test") -> str:
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return pg_database_url(name)

    yield create
    cached_engine.cache_clear()
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture
def fresh_pg_database(new_pg_database) -> Callable[..., str]:
    """Factory of fresh PostgreSQL databases, by name."""
    return lambda prefix="sp_ops_t": new_pg_database(prefix).rsplit("/", 1)[1]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'symbol_pipeline.sqlite'}"


@pytest.fixture(params=BACKENDS)
def database_url(request, sqlite_url: str) -> str:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        return sqlite_url
    return request.getfixturevalue("new_pg_database")("sp_test")


@pytest.fixture(scope="session")
def pg_url(new_pg_database) -> str:
    """One PostgreSQL database for the session, its schema created (a database per test would
    cost a CREATE DATABASE each); `engine` and `pg_engine` empty it before each test."""
    url = new_pg_database("sp_portfolio_test")
    engine = make_engine(url)
    ensure_schema(engine)
    engine.dispose()
    return url


def _emptied(url: str) -> sa.Engine:
    """An engine on the session's PostgreSQL database, every table emptied and reference rows seeded."""
    engine = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in all_metadata().sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    ensure_schema(engine)
    return engine


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty project database on each backend."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'portfolio.sqlite'}")
        ensure_schema(eng)
    else:
        eng = _emptied(request.getfixturevalue("pg_url"))
    yield eng
    eng.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[sa.Engine]:
    """An empty project database on PostgreSQL."""
    eng = _emptied(pg_url)
    yield eng
    eng.dispose()
