"""Opening the project's database: the engine for a URL, tables created or upgraded, and
telling an unavailable database from a failing statement."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import MetaData
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from symbol_pipeline.storage import (
    migrate,
    portfolio_schema,  # noqa: F401 - registers the portfolio tables on schema.metadata
    schema,
)
from symbol_pipeline.storage.dialect import cached_engine
from symbol_pipeline.storage.universe import seed_reference_data


def all_metadata() -> MetaData:
    """The metadata with every table of the project registered."""
    return schema.metadata


def on_dialect(table, dialect_name: str) -> bool:
    """Whether `table` exists on a database of that dialect: `table.info["dialects"]`, every one by default."""
    return dialect_name in table.info.get("dialects", (dialect_name,))


def comparable(dialect_name: str):
    """Alembic's `include_object` for comparing the metadata with a database of that dialect:
    a table kept on other dialects only is not missing there."""
    def include(obj, name, type_, reflected, compare_to) -> bool:
        return type_ != "table" or reflected or on_dialect(obj, dialect_name)
    return include


_READY: set[str] = set()


def ensure_schema(engine: Engine) -> None:
    """Upgrade the schema to the latest migration and seed reference rows.

    Idempotent and safe from concurrent processes; done once per database per process.
    """
    key = engine.url.render_as_string(hide_password=False)
    if key in _READY:
        return
    migrate.upgrade(engine)
    with engine.begin() as conn:
        seed_reference_data(conn)
    _READY.add(key)


def get_engine(url: str, *, create: bool = True) -> Engine:
    """The engine for `url`, its schema upgraded to the latest migration unless create is False."""
    engine = cached_engine(url)
    if create:
        ensure_schema(engine)
    return engine


# --- outages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outage:
    """Why the database could not serve a statement, when the cause is the database's state and
    not the statement: `busy` ones pass in about a second, the others when the database is back."""

    reason: str
    busy: bool
    driver_message: str


# PostgreSQL SQLSTATEs of a transient conflict or overload: serialization failure, deadlock, lock
# not available, statement cancelled (a timeout), too many connections.
_BUSY_STATES = {"40001", "40P01", "55P03", "57014", "53300"}
# SQLite's messages for a writer that waited out the busy timeout.
_SQLITE_BUSY = ("database is locked", "database is busy", "database table is locked")


def outage(exc: BaseException) -> Outage | None:
    """The outage `exc` reports, or None when it is some other error (a bug to be seen as such).

    Unavailable: a connection that failed, was refused or was dropped (PostgreSQL restarting,
    `pg_terminate_backend`, `ALLOW_CONNECTIONS false`, class 08 and 57P SQLSTATEs). Busy: no
    connection free in the pool in time, a lock or deadlock timeout, SQLite's write lock held past
    the busy timeout. The reason names the kind, never the host or the statement.
    """
    if isinstance(exc, sa_exc.TimeoutError):  # the pool's, not the driver's
        return Outage("no database connection free (pool exhausted)", True, str(exc).splitlines()[0])
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    original = exc.orig
    message = (str(original).strip().splitlines() or [type(original).__name__])[0]
    state = getattr(original, "pgcode", None)
    if state in _BUSY_STATES or any(text in message for text in _SQLITE_BUSY):
        return Outage("database busy", True, message)
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
        return Outage("database connection lost", False, message)
    if isinstance(exc, sa_exc.OperationalError) and (state is None or state[:2] in ("08", "57")):
        if "sqlite3" in type(original).__module__ and state is None and "unable to open" not in message:
            return None  # SQLite's other operational errors (no such table, ...) are bugs, not outages
        return Outage("database unavailable", False, message)
    return None
