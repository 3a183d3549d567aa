"""The exposure history's read-optimised copy of the betas: one row per symbol and session holding
its twelve betas (`symbol_session_betas`), kept by PostgreSQL triggers on `symbol_factor_exposures`.

Why: a year of one portfolio's history reads every beta of its symbols. In the long table that is
12 index entries per symbol and session (about 97,000 for 30 symbols, 41 ms of a 74 ms cache miss
on a quiet machine); here it is one row per symbol and session, 12 times fewer.

Why triggers: every writer of the long table (the assets' upserts, bulk COPY, an operator's
DELETE, a TRUNCATE) keeps the copy in the same transaction, so no reader ever sees the two
disagree after a commit. Each statement writes only the factors it wrote: the assets write their
factors of the same (symbol, date) keys in parallel transactions, and the per-column UPDATE
re-reads the row a concurrent writer committed (READ COMMITTED) instead of overwriting it with
this statement's snapshot. A beta is NaN here exactly where the long table has no row or a NULL
beta for that factor (the writers store no NaN: `dialect.upsert_frame` turns NaN into NULL).

The twelve betas are one `bytea` of 96 bytes, float8 in FACTOR_NAMES order (PostgreSQL's binary
form, big-endian), NaN where there is none: the history reads a year of a symbol as one string of
bytes, where building it from twelve double columns per row cost 7 times the read itself.

PostgreSQL only: SQLite (the embedded default, small universes) reads the long table. The SQL
below is installed by migration 0009; changing it (or FACTOR_NAMES) needs a new migration.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Sequence

import numpy as np
from sqlalchemy.engine import Connection

from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.storage.dialect import copy_binary

TABLE = "symbol_session_betas"
SOURCE = "symbol_factor_exposures"
FUNCTION = "sp_keep_symbol_session_betas"
TRIGGERS = {  # name: (event, transition tables)
    "sp_session_betas_insert": ("INSERT", "REFERENCING NEW TABLE AS changed"),
    "sp_session_betas_update": ("UPDATE", "REFERENCING OLD TABLE AS gone NEW TABLE AS changed"),
    "sp_session_betas_delete": ("DELETE", "REFERENCING OLD TABLE AS gone"),
    "sp_session_betas_truncate": ("TRUNCATE", ""),
}


_INDENT = "\n      "
_NEXT = "," + _INDENT  # one column a line in sql/schema.sql
WIDTH = 8 * len(FACTOR_NAMES)  # bytes of `betas`: one big-endian float8 per factor, NaN for none
_NONE = "'NaN'::float8"
_NAN = "'\\x7ff8000000000000'::bytea"  # float8send('NaN')


def _per_key(rows: str, values: bool) -> str:
    """Per (symbol, date) of `rows`: which factors they hold (t_<i>) and, with values, each beta (v_<i>)."""
    cols = [f"bool_or(factor = '{f}') AS t_{i}" for i, f in enumerate(FACTOR_NAMES)]
    if values:  # (symbol, date, factor) is the key of `rows`: max() is the one value
        cols += [f"max(beta) FILTER (WHERE factor = '{f}') AS v_{i}" for i, f in enumerate(FACTOR_NAMES)]
    return f"SELECT symbol, date,{_INDENT}{_NEXT.join(cols)}\n    FROM {rows} GROUP BY symbol, date"


def _slots(values: bool, keep: str) -> str:
    """The 96 bytes of a key: the factors the statement's rows hold take their beta (or none), the
    others `keep`'s bytes."""
    slots = (f"CASE WHEN k.t_{i} THEN float8send({f'coalesce(k.v_{i}, {_NONE})' if values else _NONE}) "
             f"ELSE {keep.format(at=8 * i + 1)} END" for i in range(len(FACTOR_NAMES)))
    return _INDENT + (" ||" + _INDENT).join(slots)


def _set_from(rows: str, values: bool) -> str:
    """UPDATE of the copy's rows keyed in `rows`, where their bytes change (a key just inserted
    with these values, or written again unchanged, makes no new row version)."""
    betas = _slots(values, "substring(d.betas FROM {at} FOR 8)")
    return (f"UPDATE {TABLE} d SET betas ={betas}\n    FROM ({_per_key(rows, values)}) k\n"
            f"    WHERE d.symbol = k.symbol AND d.date = k.date AND d.betas IS DISTINCT FROM ({betas})")


# Rows of `gone` whose (symbol, date, factor) an UPDATE did not write again (a changed key).
_MOVED = "(SELECT symbol, date, factor FROM gone EXCEPT SELECT symbol, date, factor FROM changed) m"


def function_sql() -> str:
    return f"""CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN  -- DELETE: a TRUNCATE of both tables at once refuses a nested one
    DELETE FROM {TABLE};
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    {_set_from("gone", values=False)};
    DELETE FROM {TABLE} d USING (SELECT DISTINCT symbol, date FROM gone) k
      WHERE d.symbol = k.symbol AND d.date = k.date
      AND NOT EXISTS (SELECT 1 FROM {SOURCE} e WHERE e.symbol = k.symbol AND e.date = k.date);
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    {_set_from(_MOVED, values=False)};
  END IF;
  -- New keys with this statement's factors; then, in a statement of its own (whose snapshot sees
  -- the keys a concurrent writer committed while this one waited), the factors of existing keys.
  INSERT INTO {TABLE} (symbol, date, betas) SELECT symbol, date,{_slots(True, _NAN)}
    FROM ({_per_key("changed", values=True)}) k
    ON CONFLICT DO NOTHING;
  {_set_from("changed", values=True)};
  RETURN NULL;
END
$fn$"""


def install_sql() -> list[str]:
    """The function and its statement-level triggers (PostgreSQL 10 or later)."""
    statements = [function_sql()]
    for name, (event, referencing) in TRIGGERS.items():
        statements.append(f"DROP TRIGGER IF EXISTS {name} ON {SOURCE}")
        statements.append(" ".join(filter(None, [f"CREATE TRIGGER {name} AFTER {event} ON {SOURCE}", referencing,
                                                 f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"])))
    return statements


def backfill_sql() -> str:
    """The copy built from the long table: one row per (symbol, date) it holds."""
    slots = " ||".join(f"{_INDENT}float8send(coalesce(max(beta) FILTER (WHERE factor = '{f}'), {_NONE}))"
                       for f in FACTOR_NAMES)
    return f"INSERT INTO {TABLE} (symbol, date, betas) SELECT symbol, date,{slots}\nFROM {SOURCE} GROUP BY symbol, date"


def uninstall_sql() -> list[str]:
    return [*(f"DROP TRIGGER IF EXISTS {name} ON {SOURCE}" for name in TRIGGERS),
            f"DROP FUNCTION IF EXISTS {FUNCTION}()"]


# One row per symbol: its dates (int4 day numbers) and its betas as two byte strings, in the same
# order (one aggregate node feeds both): 30 rows for a portfolio's year, each from its own range of
# the key's index, which holds the betas (LATERAL: a join let the planner scan the whole table).
_READ_SQL = (
    "SELECT s.code::int4, t.days, t.betas FROM unnest(%(symbols)s::text[]) WITH ORDINALITY AS s(symbol, code) "
    "CROSS JOIN LATERAL (SELECT string_agg(int4send(date - DATE '1970-01-01'), ''::bytea) AS days, "
    f"string_agg(betas, ''::bytea) AS betas FROM {TABLE} "
    "WHERE symbol = s.symbol AND date >= %(since)s AND date <= %(end)s) t WHERE t.days IS NOT NULL"
)


def read_betas(conn: Connection, symbols: Sequence[str], since: dt.date,
               end: dt.date) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every non-NULL beta of `symbols` on [since, end]: (symbol index into `symbols`, day number,
    factor index into FACTOR_NAMES, beta), one element per beta, in no particular order."""
    body = copy_binary(conn, _READ_SQL, {"symbols": list(symbols), "since": since, "end": end})
    # A row of the binary COPY: int16 field count, then per field an int32 length and its bytes.
    codes, days, grids = [], [], []
    pos, stop = 19, len(body) - 2  # after the header, before the trailer
    while pos < stop:
        code, day_length = struct.unpack_from(">ii", body, pos + 6)
        days.append(np.frombuffer(body, ">i4", day_length // 4, pos + 14))
        pos += 14 + day_length
        (beta_length,) = struct.unpack_from(">i", body, pos)
        grids.append(np.frombuffer(body, ">f8", beta_length // 8, pos + 4))
        codes.append(code)
        pos += 4 + beta_length
    if not codes:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty, np.empty(0)
    n_f = len(FACTOR_NAMES)
    grid = np.concatenate(grids).reshape(-1, n_f)  # (rows, F), NaN where no beta
    symbol = np.repeat(np.array(codes, dtype=np.int64) - 1, [len(d) for d in days])
    day = np.concatenate(days).astype(np.int64)
    held = ~np.isnan(grid)
    row, factor = np.nonzero(held)
    return symbol[row], day[row], factor.astype(np.int64), grid[held].astype(float)
