"""Migration 0009 (symbol_session_betas) on a database that already holds a universe's betas:
its time and what it locks. Prints each figure; nothing is asserted.

    .venv/bin/python benchmarks/bench_migration.py                          # 10,000 symbols × 252 sessions
    .venv/bin/python benchmarks/bench_migration.py --symbols 200 --sessions 21   # smoke

A database of its own (default sp_migration_bench, recreated, dropped at the end) on 127.0.0.1 is
brought to 0008 and filled by the database itself (generate_series: symbols × sessions × 12 betas,
a few NULL), then upgraded to 0009 while two probes run on other connections, every 0.5 s: a
reader of symbol_factor_exposures and a writer to it (an upsert of one row, as the assets do),
each with a 100 ms lock timeout. A probe that times out is counted as blocked.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import sqlalchemy as sa

from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.storage import migrate, session_betas

_FILL = """
INSERT INTO symbol_factor_exposures (symbol, date, factor, beta, beta_uncapped, capped, observations, method,
                                     "window", min_observations, beta_cap, quality)
SELECT 'M' || lpad(s::text, 5, '0'), DATE '2025-01-02' + d, f.factor,
       CASE WHEN random() < 0.01 THEN NULL ELSE random() END, random(), false, 90, 'ols', 90, 30, 5.0, 'ok'
FROM generate_series(0, :symbols - 1) s, generate_series(0, :sessions - 1) d, unnest(CAST(:factors AS text[])) f(factor)
"""


def _probe(engine: sa.Engine, sql: str, stop: threading.Event, seen: dict) -> None:
    while not stop.is_set():
        with engine.connect() as conn:
            started = time.perf_counter()
            try:
                with conn.begin():
                    conn.exec_driver_sql("SET LOCAL lock_timeout = '100ms'")
                    conn.exec_driver_sql(sql)
                seen["ok"] += 1
            except sa.exc.OperationalError:
                seen["blocked"] += 1
            seen["slowest_ms"] = max(seen["slowest_ms"], (time.perf_counter() - started) * 1e3)
        stop.wait(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="sp_migration_bench")
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=252)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    admin = sa.create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{args.database}"')
    engine = sa.create_engine(args.admin_url.rsplit("/", 1)[0] + f"/{args.database}")
    try:
        migrate.upgrade(engine, "0008")
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.text(_FILL), {"symbols": args.symbols, "sessions": args.sessions,
                                          "factors": list(FACTOR_NAMES)})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE symbol_factor_exposures")
            rows = conn.exec_driver_sql("SELECT count(*) FROM symbol_factor_exposures").scalar()
            size = conn.exec_driver_sql("SELECT pg_size_pretty(pg_total_relation_size('symbol_factor_exposures'))").scalar()
        print(f"filled: {rows:,} beta rows ({args.symbols:,} symbols × {args.sessions} sessions × 12), {size}, "
              f"in {time.perf_counter() - started:.0f} s")

        stop = threading.Event()
        reads = {"ok": 0, "blocked": 0, "slowest_ms": 0.0}
        writes = {"ok": 0, "blocked": 0, "slowest_ms": 0.0}
        probes = [
            threading.Thread(target=_probe, args=(engine, "SELECT count(*) FROM symbol_factor_exposures "
                                                          "WHERE symbol = 'M00001'", stop, reads)),
            threading.Thread(target=_probe, args=(engine, (
                "INSERT INTO symbol_factor_exposures (symbol, date, factor, beta, observations, method, \"window\", "
                "min_observations, beta_cap, quality) VALUES ('M00002', DATE '2025-01-02', 'market_beta', 0.5, 90, "
                "'ols', 90, 30, 5.0, 'ok') ON CONFLICT (symbol, date, factor) DO UPDATE SET beta = EXCLUDED.beta"),
                stop, writes)),
        ]
        for probe in probes:
            probe.start()
        time.sleep(1.2)
        started = time.perf_counter()
        migrate.upgrade(engine, "0009")
        took = time.perf_counter() - started
        time.sleep(1.2)
        stop.set()
        for probe in probes:
            probe.join()
        with engine.connect() as conn:
            copied = conn.exec_driver_sql(f"SELECT count(*) FROM {session_betas.TABLE}").scalar()
            size = conn.exec_driver_sql(f"SELECT pg_size_pretty(pg_total_relation_size('{session_betas.TABLE}'))").scalar()
        print(f"migration 0009: {took:.1f} s in one transaction; {copied:,} rows of {session_betas.TABLE}, {size}")
        print(f"  reader of symbol_factor_exposures during it: {reads['ok']} answered, {reads['blocked']} blocked "
              f"(slowest {reads['slowest_ms']:.0f} ms)")
        print(f"  writer to symbol_factor_exposures during it: {writes['ok']} answered, {writes['blocked']} blocked "
              f"by the migration's lock (slowest {writes['slowest_ms']:.0f} ms)")
    finally:
        engine.dispose()
        if not args.keep:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
