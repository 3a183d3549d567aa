"""Operations benchmark: onboarding latency and the daily scheduled run at scale, on PostgreSQL.

    .venv/bin/python benchmarks/bench_operations.py [--sizes 1000,10000] [--skip-onboarding]

Creates its own databases (sp_ops_bench_*: one for Dagster's storage, one for the pipeline) and
drops them at the end. Every figure is printed; nothing is asserted.

1. Queued -> `active` with all betas: a symbol is enqueued, symbol_onboarding_sensor ticks, the
   `latest` run it requests executes (in-process, as a run worker would), and the clock stops
   when the symbol is `active` with its 12 betas. The daemon's own latency (sensor interval,
   queue, launching a run worker process) comes on top; it is measured by the GraphQL test.
2. The daily run: symbol_daily_schedule's RunRequest for one session over N symbols, executed on
   a PostgreSQL instance with the batching env of deploy/dagster.env. Price history is
   pre-loaded directly (services.symbol_layer.load_prices), so the run fetches one session.
   Dagster's bookkeeping = wall time − the assets' own `seconds` metadata. The event log's
   growth in bytes per partition materialisation is measured on the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
warnings.filterwarnings("ignore")

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/"
SESSION = dt.date(2024, 6, 14)


RANGE_START = "2024-05-01"


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def _new_db(tag: str) -> str:
    name = f"sp_ops_bench_{tag}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    return name


def _drop_db(name: str) -> None:
    _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    _admin(f'DROP DATABASE IF EXISTS "{name}"')


def _pg_instance(db: str, home: Path):
    import dagster as dg

    home.mkdir(parents=True, exist_ok=True)
    # The storages of deploy/dagster.yaml: Dagster's PostgreSQL ones, with the project's event log.
    storages = [("run_storage", "dagster_postgres.run_storage", "PostgresRunStorage"),
                ("event_log_storage", "symbol_pipeline.runs.pg_events", "BatchingPostgresEventLogStorage"),
                ("schedule_storage", "dagster_postgres.schedule_storage", "PostgresScheduleStorage")]
    (home / "dagster.yaml").write_text(
        "instance_class:\n  module: symbol_pipeline.runs.instance\n  class: SymbolPipelineInstance\n" + "".join(
        f"{name}:\n  module: {module}\n  class: {cls}\n  config:\n    postgres_url: {PG}{db}\n"
        for name, module, cls in storages
    ) + "python_logs:\n  python_log_level: INFO\ntelemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def _query(db: str, sql: str, **params) -> tuple:
    """The first row of `sql` on database `db`."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG + db)
    with engine.connect() as conn:
        row = conn.execute(sa.text(sql), params).one()
    engine.dispose()
    return tuple(row)


def _event_log_bytes(db: str) -> int:
    return int(_query(db, "SELECT pg_total_relation_size('event_logs') + pg_total_relation_size('asset_event_tags')")[0])


def _count_materialisations(db: str, run_id: str) -> int:
    return int(_query(db, "SELECT count(*) FROM event_logs WHERE run_id = :r AND dagster_event_type = "
                          "'ASSET_MATERIALIZATION'", r=run_id)[0])


def _event_log_profile(db: str, run_id: str) -> str:
    """Where an event's bytes go: its JSON, the rest of its row, the event log's indexes."""
    (json_bytes,) = _query(db, "SELECT avg(pg_column_size(event)) FROM event_logs WHERE run_id = :r AND "
                               "dagster_event_type = 'ASSET_MATERIALIZATION'", r=run_id)
    rows, heap, indexes = _query(db, "SELECT count(*), pg_relation_size('event_logs'), pg_indexes_size('event_logs') "
                                     "FROM event_logs")
    return (f"per event-log row: JSON {float(json_bytes):.0f} bytes, heap row with it {heap / rows:.0f}, "
            f"Dagster's six indexes {indexes / rows:.0f}")


def bench_onboarding(work: Path) -> None:
    import dagster as dg
    import pandas as pd

    from symbol_pipeline.definitions import build_definitions
    from symbol_pipeline.defs.resources import DatabaseResource
    from symbol_pipeline.defs.symbols import sensors
    from symbol_pipeline.services.onboarding import ONBOARDING_SESSIONS
    from symbol_pipeline.storage import universe
    from symbol_pipeline.storage.database import get_engine

    dagster_db, data_db = _new_db("dagster"), _new_db("data")
    try:
        os.environ["SYMBOL_PIPELINE_DATABASE_URL"] = PG + data_db
        engine = get_engine(PG + data_db)
        instance = _pg_instance(dagster_db, work / "home_onboarding")
        os.environ["SYMBOL_PIPELINE_PARTITIONS_START"] = RANGE_START  # SESSION inside the range
        defs = build_definitions()
        job = defs.resolve_job_def("symbol_layer_job")
        onboarding_sensor = defs.resolve_sensor_def("symbol_onboarding_sensor")
        sensors._now = lambda: pd.Timestamp("2024-06-14 22:30", tz="UTC")
        # Warm up imports and the regressors' history, as a running deployment has them.
        from symbol_pipeline.lib.factors import REGRESSOR_ETFS
        from symbol_pipeline.services.symbol_layer import load_prices
        from symbol_pipeline.sources.synthetic import SyntheticMarket

        load_prices(engine, SyntheticMarket(seed=7, n_symbols=350), list(REGRESSOR_ETFS), [SESSION])  # the default settings' market
        for symbol in ("AAPL", "MSFT"):
            t0 = time.perf_counter()
            with engine.begin() as conn:
                universe.enqueue_symbols(conn, [symbol], requested_by="bench")
            context = dg.build_sensor_context(instance=instance, resources={"database": DatabaseResource(url=PG + data_db)},
                                              cursor=None)
            result = onboarding_sensor(context)
            t_tick = time.perf_counter() - t0
            instance.add_dynamic_partitions("symbol", result.dynamic_partitions_requests[0].partition_keys)
            latest, history = result.run_requests
            run = job.execute_in_process(instance=instance, tags=latest.tags, raise_on_error=False)
            with engine.connect() as conn:
                status = universe.symbol_status(conn, symbol)
            t_active = time.perf_counter() - t0
            print(f"onboarding {symbol}: sensor tick {t_tick:.2f}s, queued -> {status.status} with betas "
                  f"on {status.last_factor_date}: {t_active:.2f}s (run ok={run.success})")
            t1 = time.perf_counter()
            hist = job.execute_in_process(instance=instance, tags=history.tags, raise_on_error=False)
            print(f"  history run ({ONBOARDING_SESSIONS - 1} sessions before it): "
                  f"{time.perf_counter() - t1:.1f}s (ok={hist.success})")
        instance.dispose()
        engine.dispose()
    finally:
        from symbol_pipeline.storage.dialect import cached_engine

        cached_engine.cache_clear()
        _drop_db(dagster_db)
        _drop_db(data_db)


def bench_daily(size: int, work: Path) -> None:
    import dagster as dg

    from symbol_pipeline.definitions import build_definitions
    from symbol_pipeline.lib.factors import REGRESSOR_ETFS
    from symbol_pipeline.services.symbol_layer import load_prices
    from symbol_pipeline.sources.synthetic import SyntheticMarket
    from symbol_pipeline.storage import universe
    from symbol_pipeline.storage.database import get_engine
    from symbol_pipeline.storage.dialect import cached_engine

    dagster_db, data_db = _new_db("dagster"), _new_db("data")
    try:
        os.environ["SYMBOL_PIPELINE_DATABASE_URL"] = PG + data_db
        os.environ["SYMBOL_PIPELINE_SYNTHETIC_SYMBOLS"] = str(size)
        os.environ["SYMBOL_PIPELINE_PARTITIONS_START"] = RANGE_START  # SESSION inside the range
        engine = get_engine(PG + data_db)
        market = SyntheticMarket(seed=7, n_symbols=size)  # the default settings' seed
        symbols = [*REGRESSOR_ETFS, *market.universe()]
        t0 = time.perf_counter()
        report = load_prices(engine, market, symbols, [SESSION - dt.timedelta(days=1)])
        with engine.begin() as conn:
            universe.add_symbols(conn, symbols, status=universe.STATUS_ACTIVE)
        print(f"[{size}] pre-loaded {report.rows_written:,} price rows in {time.perf_counter() - t0:.1f}s")
        instance = _pg_instance(dagster_db, work / f"home_daily_{size}")
        instance.add_dynamic_partitions("symbol", symbols)
        defs = build_definitions()
        symbol_daily_schedule = defs.resolve_schedule_def("symbol_daily_schedule")
        when = dt.datetime(SESSION.year, SESSION.month, SESSION.day, 21, 0, tzinfo=ZoneInfo("America/New_York"))
        tick = symbol_daily_schedule.evaluate_tick(
            dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                      repository_def=defs.get_repository_def())
        )
        (request,) = tick.run_requests
        before = _event_log_bytes(dagster_db)
        peak_before = _peak_mb()
        t0 = time.perf_counter()
        result = defs.resolve_job_def("symbol_layer_job").execute_in_process(
            instance=instance, tags=request.tags, raise_on_error=False
        )
        wall = time.perf_counter() - t0
        peak_after = _peak_mb()
        growth = _event_log_bytes(dagster_db) - before
        # The steps write their partition events to the instance, not to the run's result: read
        # them back from the event log, as the UI and `symbol-pipeline run` do.
        per_asset = {}
        for name in ("symbol_prices", "market_beta", "ir_beta", "ridge_factor_betas", "spread_factor_betas",
                     "symbol_daily_metrics"):
            event = instance.get_latest_materialization_event(dg.AssetKey(name))
            seconds = event.asset_materialization.metadata.get("seconds") if event else None
            if seconds is not None:
                per_asset[name] = float(seconds.value)
        # The four beta assets share one computation (one multi_asset step): count it once.
        beta_seconds = max(per_asset.get(k, 0.0) for k in ("market_beta", "ir_beta", "ridge_factor_betas", "spread_factor_betas"))
        own = per_asset.get("symbol_prices", 0.0) + beta_seconds + per_asset.get("symbol_daily_metrics", 0.0)
        partitions = len(symbols)
        # One event per partition that holds data (prices, 4 beta assets, metrics), plus the
        # in-range history of symbols re-fetched from their window's start, recorded once.
        materialisations = _count_materialisations(dagster_db, result.run_id)
        print(f"[{size}] daily run over {partitions:,} symbols on {SESSION}: wall {wall:.1f}s (ok={result.success}); "
              f"(goal ≤ 45 s); assets' own seconds {own:.1f}s (prices {per_asset.get('symbol_prices', 0):.1f}, "
              f"betas {beta_seconds:.1f}, metrics {per_asset.get('symbol_daily_metrics', 0):.1f}); "
              f"Dagster bookkeeping {wall - own:.1f}s = {100 * (wall - own) / wall:.0f}%")
        print(f"[{size}] peak memory of the benchmark process: {peak_after:.0f} MB (goal ≤ 1,024 MB for the run; "
              f"{'set by the run' if peak_after > peak_before else f'already {peak_before:.0f} MB before the run, from the pre-load'})")
        print(f"[{size}] event log grew {growth / 1e6:.1f} MB for {materialisations:,} partition materialisations "
              f"= {growth / materialisations:.0f} bytes each (goal ≤ 1,000) (planned + materialised events, check results, indexes)")
        print(f"[{size}] {_event_log_profile(dagster_db, result.run_id)}")
        instance.dispose()
        engine.dispose()
    finally:
        cached_engine.cache_clear()
        _drop_db(dagster_db)
        _drop_db(data_db)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--skip-onboarding", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sp_ops_bench_") as tmp:
        work = Path(tmp)
        os.environ["SYMBOL_PIPELINE_DATA_DIR"] = str(work / "data")
        os.environ["SYMBOL_PIPELINE_PRICE_SOURCE"] = "synthetic"
        if not args.skip_onboarding:
            bench_onboarding(work)
        for size in (int(s) for s in args.sizes.split(",") if s):
            bench_daily(size, work)
    import resource

    # ru_maxrss is the peak of this whole process: the largest run, its history pre-load included.
    print(f"peak memory (RSS) of the benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
