"""symbol_session_betas equals the long table after every kind of write, concurrent writers of the
same keys included, and after migration 0009 upgrades a database that already holds betas."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.storage import migrate, session_betas
from symbol_pipeline.storage.betas import write_exposures
from symbol_pipeline.storage.dialect import bulk_insert
from symbol_pipeline.storage.schema import symbol_factor_exposures

pytestmark = pytest.mark.postgres
DAY = dt.date(2026, 3, 2)


def _rows(symbols, factors, day=DAY, seed=0, nulls=0.0) -> pd.DataFrame:
    """The long frame write_exposures takes: one row per symbol and factor."""
    rng = np.random.default_rng(seed)
    n = len(symbols) * len(factors)
    beta = rng.normal(0.6, 0.5, n)
    beta[rng.random(n) < nulls] = np.nan
    frame = pd.DataFrame({"symbol": np.repeat(symbols, len(factors)), "factor": np.tile(factors, len(symbols)),
                          "beta": beta, "beta_uncapped": beta, "capped": False, "alpha": 0.0, "r_squared": 0.5,
                          "std_error": 0.1, "observations": 90, "method": "ols", "window": 90,
                          "min_observations": 30, "ridge_alpha": np.nan, "beta_cap": 5.0, "quality": "ok",
                          "residual_variance": 1e-4})
    return frame.assign(date=day) if day is not None else frame


def _copy(conn) -> list[tuple]:
    """The copy's rows as (symbol, date, beta × 12), None where its bytes hold NaN."""
    rows = conn.execute(sa.text("SELECT symbol, date, betas FROM symbol_session_betas ORDER BY 1, 2")).all()
    decoded = []
    for symbol, date, betas in rows:
        assert len(betas) == 8 * len(FACTOR_NAMES)
        decoded.append((symbol, date, *(None if np.isnan(b) else float(b) for b in np.frombuffer(betas, ">f8"))))
    return decoded


def _from_long_table(conn) -> list[tuple]:
    pivot = ", ".join(f"max(beta) FILTER (WHERE factor = '{f}')" for f in FACTOR_NAMES)
    return [tuple(r) for r in conn.execute(sa.text(f"SELECT symbol, date, {pivot} FROM symbol_factor_exposures "
                                                   "GROUP BY symbol, date ORDER BY 1, 2")).all()]


def _assert_equal(engine) -> int:
    with engine.connect() as conn:
        got, want = _copy(conn), _from_long_table(conn)
    assert got == want  # exactly: the same doubles, NULL where the long table has no beta
    return len(got)


def _write(engine, frame: pd.DataFrame, day=DAY) -> None:
    with engine.begin() as conn:
        write_exposures(conn, day, frame.drop(columns="date"))


def test_every_kind_of_write_keeps_the_copy_equal(pg_engine):
    symbols = ["AAA", "BBB", "CCC"]
    _write(pg_engine, _rows(symbols, FACTOR_NAMES[:6], nulls=0.2))       # inserts (the assets' upsert)
    assert _assert_equal(pg_engine) == 3
    _write(pg_engine, _rows(symbols, FACTOR_NAMES[4:], seed=1))          # upsert: 2 updated, 6 new per key
    _assert_equal(pg_engine)
    with pg_engine.begin() as conn:                                        # bulk COPY, another date
        bulk_insert(conn, symbol_factor_exposures, _rows(["AAA", "DDD"], FACTOR_NAMES, day=DAY + dt.timedelta(1), seed=2))
    assert _assert_equal(pg_engine) == 5
    with pg_engine.begin() as conn:
        conn.execute(sa.text("UPDATE symbol_factor_exposures SET beta = NULL WHERE symbol = 'AAA' AND factor = 'ir_beta'"))
        conn.execute(sa.text("UPDATE symbol_factor_exposures SET beta = beta * 2 WHERE symbol = 'BBB'"))
        conn.execute(sa.text("UPDATE symbol_factor_exposures SET symbol = 'EEE' WHERE symbol = 'CCC' "
                             "AND factor IN ('market_beta', 'spread_size')"))            # a key moved
    _assert_equal(pg_engine)
    with pg_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM symbol_factor_exposures WHERE symbol = 'BBB' AND factor LIKE 'ridge%'"))
        conn.execute(sa.text("DELETE FROM symbol_factor_exposures WHERE symbol = 'DDD'"))  # every row of a key
    assert _assert_equal(pg_engine) == 5  # AAA ×2, BBB, CCC, EEE
    with pg_engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE symbol_factor_exposures"))
    assert _assert_equal(pg_engine) == 0


def test_a_rolled_back_write_leaves_no_trace(pg_engine):
    _write(pg_engine, _rows(["AAA"], FACTOR_NAMES))
    with pytest.raises(RuntimeError), pg_engine.begin() as conn:
        write_exposures(conn, DAY, _rows(["AAA", "BBB"], FACTOR_NAMES, seed=3, day=None))
        raise RuntimeError("the run failed after its write")
    assert _assert_equal(pg_engine) == 1


def test_concurrent_writers_of_the_same_keys_keep_each_others_factors(pg_engine):
    """The assets write their own factors of the same (symbol, date) keys in parallel transactions:
    the second to commit must not put back the first's factors as its snapshot saw them."""
    symbols = [f"S{i:03d}" for i in range(200)]
    first, second = FACTOR_NAMES[:2], FACTOR_NAMES[2:8]
    blocked = threading.Event()
    errors: list[BaseException] = []

    def later_writer() -> None:
        try:
            with pg_engine.begin() as conn:
                blocked.set()  # its keys are locked by the first writer's uncommitted rows
                write_exposures(conn, DAY, _rows(symbols, second, seed=5, day=None))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with pg_engine.begin() as conn:
        write_exposures(conn, DAY, _rows(symbols, first, seed=4, day=None))
        thread = threading.Thread(target=later_writer)
        thread.start()
        blocked.wait(10)
        thread.join(0.5)  # it waits on the locks of this transaction's rows
    thread.join(30)
    assert not errors and not thread.is_alive()
    _assert_equal(pg_engine)
    with pg_engine.connect() as conn:
        rows = _copy(conn)
    held = [FACTOR_NAMES.index(f) + 2 for f in (*first, *second)]
    full = sum(all(row[i] is not None for i in held) for row in rows)
    assert full == len(symbols)


def test_read_betas_gives_every_stored_beta(pg_engine):
    _write(pg_engine, _rows(["AAA", "BBB"], FACTOR_NAMES, nulls=0.3))
    _write(pg_engine, _rows(["AAA"], FACTOR_NAMES, day=DAY + dt.timedelta(1), seed=7), day=DAY + dt.timedelta(1))
    symbols = ["BBB", "NONE", "AAA"]
    with pg_engine.connect() as conn:
        code, day, factor, beta = session_betas.read_betas(conn, symbols, DAY, DAY + dt.timedelta(1))
        stored = conn.execute(sa.text("SELECT symbol, date - DATE '1970-01-01', factor, beta FROM "
                                      "symbol_factor_exposures WHERE beta IS NOT NULL")).all()
    got = sorted(zip((symbols[i] for i in code), day.tolist(), (FACTOR_NAMES[f] for f in factor), beta.tolist()))
    assert got == sorted(tuple(r) for r in stored)
    with pg_engine.connect() as conn:
        assert all(len(a) == 0 for a in session_betas.read_betas(conn, ["NONE"], DAY, DAY))


def test_migration_0009_builds_the_copy_of_an_existing_database(new_pg_database):
    engine = sa.create_engine(new_pg_database("sp_session_betas"))
    migrate.upgrade(engine, "0008")
    with engine.begin() as conn:
        bulk_insert(conn, symbol_factor_exposures, _rows(["AAA", "BBB", "CCC"], FACTOR_NAMES, nulls=0.1))
        bulk_insert(conn, symbol_factor_exposures, _rows(["AAA"], FACTOR_NAMES[:3], day=DAY + dt.timedelta(1)))
    migrate.upgrade(engine, "0009")
    assert _assert_equal(engine) == 4
    _write(engine, _rows(["AAA"], FACTOR_NAMES[3:], day=DAY + dt.timedelta(1), seed=9), day=DAY + dt.timedelta(1))
    assert _assert_equal(engine) == 4  # kept from then on
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(str(engine.url), conn), "0008")
    assert "symbol_session_betas" not in sa.inspect(engine).get_table_names()
    with engine.begin() as conn:  # and the long table writes on without its triggers
        bulk_insert(conn, symbol_factor_exposures, _rows(["DDD"], FACTOR_NAMES))
    engine.dispose()
