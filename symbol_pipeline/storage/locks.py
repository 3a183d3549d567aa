"""One lock per date, so that two runs never write the same dates at once.

Every kind of run (the daily schedule, an onboarding run, a UI backfill, the CLI) ends in the
same service functions, so the lock is taken there rather than in Dagster: Dagster's own
concurrency limits only see runs launched through the daemon, not `execute_in_process` from the
CLI. Writes are idempotent upserts, so the lock is not needed for correctness of one row; it
keeps two runs from interleaving their per-date transactions (prices, then betas, then
metrics) and doing the same work twice.

PostgreSQL: session-level advisory locks on one dedicated connection, one per date, taken in
sorted order (two runs over overlapping ranges cannot deadlock: whoever holds the earliest
common date goes first). They are released on exit, and by the server if the process dies.
SQLite: one `fcntl.flock` file per date beside the database file, same order, released by the
kernel when the process dies.

Take the locks outside any transaction: a run that holds a date lock and waits on a row lock
must never be waited on by a run that holds that row lock and waits on a date lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from symbol_pipeline.storage.dialect import is_postgres

LOCK_NAMESPACE = "symbol_pipeline:"


def _iso(day: dt.date | str) -> str:
    return day.isoformat() if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)).isoformat()


def lock_key(day: dt.date | str) -> int:
    """A stable signed 64-bit key for the date: the same in every process and Python version."""
    digest = hashlib.blake2b((LOCK_NAMESPACE + _iso(day)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _sqlite_lock_dir(engine: Engine, lock_dir: str | os.PathLike | None) -> Path:
    """`lock_dir`, or else a `locks` folder beside the SQLite database file (the temporary
    directory for an in-memory database, which no other process can open anyway)."""
    if lock_dir is not None:
        path = Path(lock_dir)
    else:
        database = engine.url.database
        in_file = database and database != ":memory:"
        base = Path(database).resolve().parent if in_file else Path(tempfile.gettempdir()) / "symbol_pipeline"
        path = base / "locks"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def date_locks(engine: Engine, dates: Iterable[dt.date | str], *, wait_log=None,
               lock_dir: str | os.PathLike | None = None) -> Iterator[list[str]]:
    """Hold an exclusive lock on each of `dates` for the duration of the block.

    Yields the ISO dates locked, sorted. `wait_log(message)` is called once if a lock is
    already held elsewhere, so a run that waits says why in its log. `lock_dir` (SQLite only):
    where the lock files go, by default beside the database file.
    """
    days = sorted({_iso(d) for d in dates})
    if not days:
        yield days
        return
    if is_postgres(engine):
        with _postgres_locks(engine, days, wait_log) as held:
            yield held
    else:
        with _file_locks(_sqlite_lock_dir(engine, lock_dir), days, wait_log) as held:
            yield held


@contextlib.contextmanager
def _postgres_locks(engine: Engine, days: list[str], wait_log) -> Iterator[list[str]]:
    keys = [lock_key(d) for d in days]
    # A connection of its own, never one a caller might commit or return to the pool mid-run.
    conn = engine.connect()
    held: list[int] = []
    try:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for day, key in zip(days, keys):
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            if not got:
                if wait_log:
                    wait_log(f"waiting for another run writing {day}")
                    wait_log = None
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            held.append(key)
        yield days
    finally:
        try:
            for key in reversed(held):
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        finally:
            # If an unlock failed the connection is broken, and the server drops its locks with it.
            conn.close()


@contextlib.contextmanager
def _file_locks(directory: Path, days: list[str], wait_log) -> Iterator[list[str]]:
    handles = []
    try:
        for day in days:
            fd = os.open(directory / f"date-{day}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            handles.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if wait_log:
                    wait_log(f"waiting for another run writing {day}")
                    wait_log = None
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield days
    finally:
        for fd in reversed(handles):
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


def locked_elsewhere(engine: Engine, day: dt.date | str, *, lock_dir: str | os.PathLike | None = None) -> bool:
    """True when another session holds `day`'s lock (for tests and diagnostics)."""
    try:
        with _probe(engine, _iso(day), lock_dir):
            return False
    except BlockingIOError:
        return True


@contextlib.contextmanager
def _probe(engine: Engine, day: str, lock_dir: str | os.PathLike | None):
    if is_postgres(engine):
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            key = lock_key(day)
            if not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                raise BlockingIOError(day)
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            yield
    else:
        fd = os.open(_sqlite_lock_dir(engine, lock_dir) / f"date-{day}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            yield
        finally:
            os.close(fd)
