"""Everything that differs between SQLite and PostgreSQL, in one place.

Engines (the pipeline's, the API's, an autocommit one for single reads), the upsert's
dialect-specific INSERT, bulk writes and reads through COPY on PostgreSQL (executemany and
plain SELECTs elsewhere), and prepared statements.
"""

from __future__ import annotations

import hashlib
import io
import select
import time
import weakref
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

_BATCH_ROWS = 10_000

# Above this many values a query reads more and filters in memory, or sends chunks, instead of
# one long IN list: SQLite caps bound parameters.
IN_LIMIT = 900

# Worker threads per API process for the synchronous endpoints (anyio's default is 40): on two
# cores more threads only queue on the GIL and hold more PostgreSQL connections.
SERVING_THREADS = 16


def chunks(items: Sequence, size: int = IN_LIMIT) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- engines ----------------------------------------------------------------------------------


def normalise_database_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg2, the driver this project installs (docs/architecture.md, "Dagster at this scale")."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def _create_engine(url: str | sa.URL, **options: Any) -> Engine:
    """sa.create_engine with bound parameters kept out of errors and logs: a failed statement's
    message (which a 500's traceback logs at the default level) would otherwise carry an API key's
    hash or a position's symbol and quantity."""
    return sa.create_engine(url, hide_parameters=True, **options)


def make_engine(url: str) -> Engine:
    """An engine for `url`, creating the SQLite file's folder when needed."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = _create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            # WAL lets the webserver read while a run writes; the busy timeout waits out writers.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return _create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


@lru_cache(maxsize=8)
def cached_engine(url: str) -> Engine:
    """One engine (and pool) per URL per process."""
    return make_engine(url)


# A pooled connection unused for longer than this is pinged before use whatever its socket says:
# a peer that vanished without closing (a network partition) leaves nothing to read.
PING_IDLE_SECONDS = 30.0


def _checked_on_checkout(engine: Engine) -> Engine:
    """Check each pooled connection before use without a round trip while it is fresh.

    A connection the database closed (`pg_terminate_backend`, a restart, a failover) has its
    socket readable: the server's goodbye, then end of file. An idle connection in good order has
    nothing to read, so a zero-timeout poll of the socket tells the two apart locally. Only a
    readable or long-idle connection is pinged (`SELECT 1`), and one that fails the ping is
    replaced, as `pool_pre_ping` replaced it. pool_pre_ping pinged on every checkout: two of a
    cache hit's four round trips (docs/performance.md, issue 19)."""

    @sa.event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record) -> None:
        record.info["checked_in"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy) -> None:
        readable = bool(select.select([dbapi_conn.fileno()], [], [], 0)[0])
        if not readable and time.monotonic() - record.info.get("checked_in", 0.0) < PING_IDLE_SECONDS:
            return
        try:
            with dbapi_conn.cursor() as cur:
                cur.execute("SELECT 1")
        except Exception as exc:  # the pool discards this connection and checks out another
            raise sa.exc.DisconnectionError(str(exc)) from exc

    return engine


def serving_engine(url: str) -> Engine:
    """The engine of the HTTP API: on PostgreSQL a pool sized for the server's threads whose
    connections are checked before use (`_checked_on_checkout`). Without a check, every connection
    the database dropped (a restart, a failover, `pg_terminate_backend`) failed the next request
    that drew it from the pool. Elsewhere the project's shared engine."""
    if url.startswith("postgresql"):
        # At least as many connections as the server runs threads (SERVING_THREADS): a smaller
        # pool with overflow opened and closed a connection on many requests.
        return _checked_on_checkout(_create_engine(url, pool_size=SERVING_THREADS, max_overflow=4, pool_recycle=600))
    return cached_engine(url)


_autocommit: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def autocommit(engine: Engine) -> Engine:
    """An engine for reads outside any transaction: no BEGIN and no ROLLBACK round trip around a
    single SELECT (each statement sees the latest committed data, as under READ COMMITTED).

    On PostgreSQL its own pool of connections that stay in autocommit (switching a pooled
    connection in and out of autocommit cost a round trip of its own), disposed with `engine`,
    and checked before use like the serving engine's.
    """
    found = _autocommit.get(engine)
    if found is None:
        if is_postgres(engine):
            found = _create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=SERVING_THREADS,
                                     max_overflow=4, pool_recycle=600)
            _checked_on_checkout(found)
            sa.event.listen(engine, "engine_disposed", lambda _conn, child=found: child.dispose())
        else:
            found = engine.execution_options(isolation_level="AUTOCOMMIT")
        _autocommit[engine] = found
    return found


def is_postgres(bind: Connection | Engine) -> bool:
    return bind.dialect.name == "postgresql"


# --- serialising writers ----------------------------------------------------------------------


def take_write_lock(conn: Connection) -> None:
    """SQLite: take the database's write lock now (BEGIN IMMEDIATE) unless this transaction holds it.

    pysqlite begins a transaction only at the first INSERT/UPDATE/DELETE, so what a transaction
    read before then may be stale by the time it writes (and upgrading a read to a write can fail
    at once with "database is locked"). Taken first, the lock makes every writer wait its turn
    (up to the busy timeout) and read what the previous one committed: SQLite serialises changes
    database-wide. PostgreSQL locks rows instead (`with_for_update`, `lock_name`); no-op there.
    """
    if is_postgres(conn):
        return
    raw = conn.connection.dbapi_connection
    if not getattr(raw, "in_transaction", True):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def lock_name(conn: Connection, name: str) -> None:
    """Hold a lock named `name` until the transaction ends: a transaction-level advisory lock on
    PostgreSQL (for what has no row to lock, such as a requester's daily count), the database's
    write lock on SQLite."""
    if not is_postgres(conn):
        take_write_lock(conn)
        return
    digest = hashlib.blake2b(f"symbol_pipeline:{name}".encode(), digest_size=8).digest()
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(digest, "big", signed=True)})


# --- upserts ----------------------------------------------------------------------------------


def insert_statement(bind: Connection | Engine, table: sa.Table):
    """The dialect's INSERT for `table`, the one with ON CONFLICT clauses."""
    return postgresql.insert(table) if is_postgres(bind) else sqlite.insert(table)


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    update_columns: Iterable[str] | None = None,
) -> int:
    """Insert `rows`, updating the listed columns where the primary key exists. Never deletes.

    Runs inside the caller's transaction, so a batch is all or nothing.
    """
    if not rows:
        return 0
    keys = [c.name for c in table.primary_key.columns]
    columns = list(rows[0].keys())
    update = [c for c in (update_columns if update_columns is not None else columns) if c not in keys]
    stmt = insert_statement(conn, table)
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    # One statement compiled once and executed over many parameter sets: compiling a
    # multi-row VALUES clause costs more than the database's own work.
    for start in range(0, len(rows), _BATCH_ROWS):
        conn.execute(stmt, list(rows[start : start + _BATCH_ROWS]))
    return len(rows)


def insert_ignore(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows whose primary key is new; leave existing rows untouched."""
    return upsert(conn, table, rows, update_columns=[])


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def upsert_frame(conn: Connection, table: sa.Table, frame: pd.DataFrame | None, *,
                 update_columns: Iterable[str] | None = None) -> int:
    """Upsert a DataFrame whose columns are a subset of `table`'s, in the caller's transaction.

    On PostgreSQL the rows go through COPY into a temporary table and one
    INSERT ... ON CONFLICT, which is an order of magnitude faster than multi-row VALUES for
    the ~10^5 rows of a daily run. NaN becomes NULL.
    """
    if frame is None or len(frame) == 0:
        return 0
    columns = [str(c) for c in frame.columns]
    if not is_postgres(conn):
        return upsert(conn, table, _records(frame), update_columns=update_columns)
    keys = [c.name for c in table.primary_key.columns]
    update = [c for c in (update_columns if update_columns is not None else columns) if c not in keys]
    temp = f"tmp_{table.name}"
    quoted = ", ".join(f'"{c}"' for c in columns)
    conn.exec_driver_sql(
        f'CREATE TEMP TABLE IF NOT EXISTS "{temp}" (LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP'
    )
    conn.exec_driver_sql(f'TRUNCATE "{temp}"')
    _copy_in(conn, temp, frame)
    conflict = ", ".join(f'"{k}"' for k in keys)
    action = (
        "DO UPDATE SET " + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in update) if update else "DO NOTHING"
    )
    conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{temp}" ON CONFLICT ({conflict}) {action}'
    )
    return len(frame)


def bulk_insert(conn: Connection, table: sa.Table, frame: pd.DataFrame | None) -> None:
    """Append a DataFrame: COPY on PostgreSQL (10× faster than INSERTs at 100k rows), executemany elsewhere."""
    if frame is None or frame.empty:
        return
    if is_postgres(conn):
        _copy_in(conn, table.name, frame)
        return
    records = _records(frame)
    for chunk in chunks(records, max(1, 30_000 // max(1, len(frame.columns)))):
        conn.execute(table.insert(), list(chunk))


# --- COPY (PostgreSQL) ------------------------------------------------------------------------

_NULL = "\\N"
_SPECIAL = r"[\\\t\n\r]"


def _escape(text: pd.Series) -> pd.Series:
    """Escape COPY text-format specials (backslash, tab, newline, carriage return); most values have none."""
    special = text.str.contains(_SPECIAL, regex=True)
    if special.any():
        text = text.where(~special, text.str.replace("\\", "\\\\", regex=False).str.replace("\t", "\\t", regex=False)
                          .str.replace("\n", "\\n", regex=False).str.replace("\r", "\\r", regex=False))
    return text


def _cell(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "t" if value else "f"
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _copy_cells(column: pd.Series) -> np.ndarray:
    """One column as COPY text cells (object array): floats through repr, the shortest text that
    reads back to the same double; NaN, None and NaT as NULL."""
    kind = column.dtype.kind
    if kind == "f":
        values = column.to_numpy(dtype=float)
        cells = np.array(list(map(repr, values.tolist())), dtype=object)
        cells[np.isnan(values)] = _NULL
        return cells
    if kind in "iu":
        return np.array(list(map(str, column.tolist())), dtype=object)
    if kind == "b":
        return np.where(column.to_numpy(), "t", "f").astype(object)
    missing = pd.isna(column).to_numpy()
    if kind != "M" and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
        cells = _escape(column.fillna("")).to_numpy(dtype=object)
    else:
        # Dates and other repeated objects: format each distinct value once.
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        formatted = _escape(pd.Series([_cell(v) for v in uniques], dtype=object)).to_numpy(dtype=object)
        cells = formatted[codes] if len(formatted) else np.empty(len(column), dtype=object)
    cells[missing] = _NULL
    return cells


def copy_text(frame: pd.DataFrame) -> str:
    """`frame` in COPY's text format (tab-separated, NULL as \\N), formatted column by column:
    pandas' to_csv, value by value, cost more than the COPY itself. Floats round-trip exactly."""
    columns = [_copy_cells(frame[c]) for c in frame.columns]
    return "".join("\t".join(row) + "\n" for row in zip(*columns))


def _copy_in(conn: Connection, table_name: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO(copy_text(frame))
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(f'COPY "{table_name}" ({cols}) FROM STDIN', buffer)


def read_frame(conn: Connection, query: sa.Select) -> pd.DataFrame:
    """Run a SELECT into a DataFrame; on PostgreSQL through COPY, several times faster for big reads.

    On PostgreSQL dates come back as ISO text, booleans as t/f; text columns stay text.
    """
    if not is_postgres(conn):
        result = conn.execute(query)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    text_columns = {c.name: str for c in query.selected_columns if isinstance(c.type, (sa.String, sa.Uuid))}
    buffer = io.StringIO()
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
    buffer.seek(0)
    # round_trip: the parser that reads PostgreSQL's shortest float text back to the same double.
    return pd.read_csv(buffer, keep_default_na=False, na_values=[""], dtype=text_columns,
                       float_precision="round_trip")


def copy_binary(conn: Connection, sql: str, params: dict) -> memoryview:
    """The binary COPY stream of the query `sql` (PostgreSQL; header and trailer included): bytea
    and arrays arrive as they are stored, not as hex or text to parse."""
    buffer = io.BytesIO()
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(cur.mogrify(f"COPY ({sql}) TO STDOUT WITH (FORMAT binary)", params).decode(), buffer)
    return buffer.getbuffer()


# --- prepared statements (PostgreSQL) ---------------------------------------------------------


def execute_prepared(conn: Connection, name: str, stmt: sa.Select, params: dict[str, Any]) -> list:
    """Run `stmt` with `params`; on PostgreSQL as a statement prepared once per connection.

    psycopg2 sends every statement as text, and planning the cache-hit query cost more server
    time than running it; a prepared statement is planned once per connection.
    """
    if not is_postgres(conn):
        return conn.execute(stmt, params).all()
    names = list(params)
    name = f"{name}_{len(names)}"
    info = conn.connection.info
    if name not in info:
        sql = str(stmt.compile(dialect=conn.dialect))
        for i, param in enumerate(names, start=1):
            sql = sql.replace(f"%({param})s", f"${i}")
        if "%(" in sql:
            raise ValueError(f"unbound parameter left in prepared statement {name}")
        conn.exec_driver_sql(f"PREPARE {name} AS {sql}".replace("%%", "%"))
        info[name] = "EXECUTE " + name + "(" + ", ".join(f"%({p})s" for p in names) + ")"
    return conn.exec_driver_sql(info[name], params).all()
