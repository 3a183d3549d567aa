"""Day after day: the window moves, symbols are added, the daily run runs; every figure beside its goal.

    .venv/bin/python benchmarks/bench_days.py [--symbols 10000] [--sessions 21] [--days 25] [--daily 5]
                                              [--onboard-days 5] [--skip-ui] [--keep DIR]

PostgreSQL for the data and the instance (deploy/dagster.yaml's storages, the project's instance
class), default settings: a window of `--sessions` sessions (SYMBOL_PIPELINE_PARTITION_SESSIONS).

How the days advance: a fake clock. The lived days are the last `--days` completed sessions; on
each, the move step (runs.window.move_window, what partition_window_job runs) is called with that
day's 21:30 New York as `now`, and the definitions are built again afterwards, as a code-server
reload does. The sessions before the first lived day are written as the state a deployment with
retention holds: the window's sessions, each as the daily run's events (defs.events.write_keys, a
recorded SUCCESS run per session), no older events. On each lived day but the last `--daily`, the
day is written the same way (a recorded daily run); on the last `--daily` days the pipeline's own
daily run (runs.submit.run_symbol_layer over that session × every symbol) runs and is timed. On
`--onboard-days` of the lived days a new symbol is added and its window computed (the onboarding
runs: latest session, then history) through the pipeline.

Printed, each beside its goal (exit 1 when one is missed): the daily run's wall time and the
process's peak RSS; the move step's wall time; the first status read of every symbol asset after
each move and after each symbol add (what the UI's partitions page pays before drawing: the
status-cache step, read through the instance as the webserver reads it); the event log's rows and
pg_total_relation_size after a plain VACUUM at the end and its growth over the last 20 sessions;
without --skip-ui, a webserver on the instance through the lived days (benchmarks/days_live.py):
reloaded after each move as the move reloads a code server, its partitions page of market_beta timed
in Chromium (../shared/tools/ui_pages.py) as the first status read after each move and each symbol
add, the last day's daily run launched through it and started by `dagster-daemon`; at the end
bench_year.ui: every symbol asset's partitions page and overview, the Materialize dialog, a symbol
added, the daily schedule's tick and a "backfill missing" launch. Pages are skipped, saying why,
without Chromium and playwright.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path
from zoneinfo import ZoneInfo

warnings.filterwarnings("ignore")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_operations import PG, _drop_db, _new_db, _pg_instance  # noqa: E402
from bench_year import SYMBOL_ASSETS  # noqa: E402
from bench_year import ui as year_ui  # noqa: E402
from days_live import LiveUI  # noqa: E402

NY = ZoneInfo("America/New_York")
MISSED: list[str] = []
LIVE: list = []  # the webserver of the lived days, stopped before the databases are dropped


def goal(label: str, value: float, limit: float, unit: str = "s") -> None:
    ok = value <= limit
    if not ok:
        MISSED.append(label)
    print(f"{label}: {value:,.2f} {unit} (goal ≤ {limit:,.0f} {unit}) {'met' if ok else 'MISSED'}", flush=True)


def evening(day: dt.date):
    import pandas as pd

    return pd.Timestamp(dt.datetime(day.year, day.month, day.day, 21, 30, tzinfo=NY))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vacuum_size(db: str) -> tuple[int, int]:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=db)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM event_logs")
        cur.execute("SELECT count(*), pg_total_relation_size('event_logs') FROM event_logs")
        rows, size = cur.fetchone()
    conn.close()
    return int(rows), int(size)


def write_day(instance, day: dt.date, symbols: list[str]) -> None:
    """The events a daily run of `day` leaves (one recorded SUCCESS run, one event per partition)."""
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
    from dagster._core.utils import make_new_run_id

    from symbol_pipeline.defs.events import write_keys
    from symbol_pipeline.runs.keys import date_range_tags, range_tags
    from symbol_pipeline.runs.submit import FACTOR_RETURNS_JOB, SYMBOL_LAYER_JOB

    marker = {"written_by": "benchmarks/bench_days.py"}
    d = day.isoformat()
    for job, tags in ((FACTOR_RETURNS_JOB, date_range_tags(d, d)), (SYMBOL_LAYER_JOB, range_tags(d, d, symbols[0], symbols[-1]))):
        run = instance.add_run(DagsterRun(job_name=job, run_id=make_new_run_id(), status=DagsterRunStatus.SUCCESS,
                                          tags={**tags, "symbol_pipeline/written_by": marker["written_by"]}))
        if job == FACTOR_RETURNS_JOB:
            write_keys(instance, run.run_id, job, "factor_returns", "factor_returns", [d], marker)
            continue
        keys = [f"{d}|{s}" for s in symbols]
        for asset in SYMBOL_ASSETS:
            write_keys(instance, run.run_id, job, "symbol_layer", asset, keys, marker)


def status_reads(instance, defs, label: str, limit: float) -> None:
    """The first status read of every symbol asset: the status-cache step of a page load."""
    import dagster as dg
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

    worst = 0.0
    for name in SYMBOL_ASSETS:
        pdef = defs.resolve_assets_def(dg.AssetKey(name)).partitions_def
        t0 = time.perf_counter()
        get_and_update_asset_status_cache_value(instance, dg.AssetKey(name), pdef)
        worst = max(worst, time.perf_counter() - t0)
    goal(f"  {label}: slowest first status read of the six symbol assets", worst, limit)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=21)
    parser.add_argument("--days", type=int, default=25)
    parser.add_argument("--daily", type=int, default=5)
    parser.add_argument("--onboard-days", type=int, default=5)
    parser.add_argument("--skip-ui", action="store_true")
    parser.add_argument("--keep", help="keep the databases; their names are printed")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_days_"))
    dagster_db, data_db = _new_db("days_dagster"), _new_db("days_data")
    os.environ.update({
        "SYMBOL_PIPELINE_DATABASE_URL": PG + data_db, "SYMBOL_PIPELINE_PRICE_SOURCE": "synthetic",
        # The source knows the symbols onboarded later too; the universe starts with the first N.
        "SYMBOL_PIPELINE_SYNTHETIC_SYMBOLS": str(args.symbols + args.onboard_days),
        "SYMBOL_PIPELINE_PARTITION_SESSIONS": str(args.sessions),
        "SYMBOL_PIPELINE_DATA_DIR": str(work / "data"),
        "DAGSTER_EVENT_BATCH_SIZE": "1000", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
    })
    os.environ.pop("SYMBOL_PIPELINE_PARTITIONS_START", None)
    try:
        return run(args, work, dagster_db, data_db)
    finally:
        for live in LIVE:
            if live is not None:
                live.close()
        if not args.keep:
            _drop_db(dagster_db)
            _drop_db(data_db)
        else:
            print(f"kept: dagster database {dagster_db}, data database {data_db}, home {work}")


def run(args, work: Path, dagster_db: str, data_db: str) -> int:
    from symbol_pipeline.config import get_settings
    from symbol_pipeline.definitions import build_definitions
    from symbol_pipeline.defs.symbols.window import partitions_for
    from symbol_pipeline.lib import sessions
    from symbol_pipeline.lib.factors import REGRESSOR_ETFS
    from symbol_pipeline.runs.submit import register_symbols, run_symbol_layer
    from symbol_pipeline.runs.window import move_window
    from symbol_pipeline.services import window
    from symbol_pipeline.services.symbol_layer import load_prices
    from symbol_pipeline.sources.synthetic import SyntheticMarket
    from symbol_pipeline.storage import universe
    from symbol_pipeline.storage import window as window_store
    from symbol_pipeline.storage.database import get_engine

    settings = get_settings()
    engine = get_engine(settings.database_url)
    market = SyntheticMarket(seed=7, n_symbols=args.symbols + args.onboard_days)
    names = market.universe()
    symbols, newcomers = sorted([*REGRESSOR_ETFS, *names[:args.symbols]]), list(names[args.symbols:])
    with engine.begin() as conn:
        universe.add_symbols(conn, symbols, status=universe.STATUS_ACTIVE)
    home = work / "home"
    instance = _pg_instance(dagster_db, home)
    register_symbols(instance, symbols)
    latest = sessions.latest_completed_session()
    lived = [d.date() for d in sessions.sessions_ending(latest, args.days)]
    before = sessions.window_start(sessions.previous_session(lived[0]), args.sessions)
    with engine.begin() as conn:
        window_store.write_first_date(conn, before, "bench_days")
    prior = [d.date() for d in sessions.sessions_between(before, sessions.previous_session(lived[0]))]
    print(f"{len(symbols):,} symbols; window of {args.sessions} sessions; {len(prior)} sessions before the lived "
          f"days written as a deployment with retention holds them ({prior[0]}..{prior[-1]}); "
          f"{len(lived)} lived days {lived[0]}..{lived[-1]}, the last {args.daily} through the daily run", flush=True)
    t0 = time.perf_counter()
    for day in prior:
        write_day(instance, day, symbols)
    print(f"prior sessions written in {time.perf_counter() - t0:.0f} s", flush=True)
    # Prices of the window behind the first daily run: the run loads what is missing itself.
    rule = settings.window_rule
    onboard_on = set(lived[-args.onboard_days:]) if args.onboard_days else set()
    sizes: dict[dt.date, tuple[int, int]] = {}
    universe20 = [len(symbols)]
    live = None if args.skip_ui else LiveUI(home, goal)
    LIVE.append(live)
    for i, day in enumerate(lived):
        report = move_window(instance, engine, rule, partitions_for, now=evening(day), by="bench_days")
        print(f"day {i + 1}/{len(lived)} {day}: " + "; ".join(report.lines()[:1] + report.lines()[2:]), flush=True)
        goal("  move step", report.seconds, 60)
        defs = build_definitions(settings)  # the code server, reloaded by the move
        if live is not None:  # the webserver's code server too; its page is the first status read
            live.reload()
            live.first_page("market_beta", f"{day} after the move", 5)
        status_reads(instance, defs, "after the move", 5)
        if i >= len(lived) - args.daily:
            if i == len(lived) - args.daily:  # as bench_operations: the window behind the run is stored
                t0 = time.perf_counter()
                load_prices(engine, market, symbols, [sessions.previous_session(day)])
                print(f"  prices of the window behind {day} pre-loaded in {time.perf_counter() - t0:.0f} s", flush=True)
            if live is not None and day == lived[-1]:
                live.daemon_daily_run(defs, instance, day)
            else:
                t0 = time.perf_counter()
                result = run_symbol_layer(instance, defs, day, day, None)
                goal(f"  daily run {day} over {len(symbols):,} symbols (ok={result.success})",
                     time.perf_counter() - t0, 45)
                goal("  peak RSS of the process so far", peak_mb(), 1024, "MB")
                if not result.success:
                    MISSED.append(f"daily run {day} failed")
        else:
            write_day(instance, day, symbols)
        if day in onboard_on:
            new = newcomers.pop(0)
            with engine.begin() as conn:
                universe.add_symbols(conn, [new], status=universe.STATUS_PENDING)
            register_symbols(instance, [new])
            if live is not None:
                live.first_page("market_beta", f"{day} after adding {new}", 3)
            status_reads(instance, defs, f"after adding {new}", 3)
            first = window.stored_first_date(engine)
            t0 = time.perf_counter()
            ok = (run_symbol_layer(instance, defs, day, day, [new]).success
                  and (first >= day or run_symbol_layer(instance, defs, first, sessions.previous_session(day), [new]).success))
            print(f"  onboarded {new} over {first}..{day} in {time.perf_counter() - t0:.1f} s (ok={ok})", flush=True)
            symbols = sorted([*symbols, new])
        sizes[day] = vacuum_size(dagster_db)
        if len(lived) > 20 and day == lived[-21]:
            universe20 = [len(symbols)]
    rows, size = sizes[lived[-1]]
    print(f"event log at the end: {rows:,} rows, {size / 1e6:.1f} MB after VACUUM "
          f"(window {args.sessions} sessions × {len(symbols):,} symbols × {len(SYMBOL_ASSETS)} assets)")
    if len(lived) > 20:
        rows0, size0 = sizes[lived[-21]]
        print(f"  (the universe grew by {len(symbols) - universe20[0]} symbols over those sessions: "
              f"{100 * (len(symbols) - universe20[0]) / universe20[0]:.2f} % of the event log's partitions)")
        goal("event log growth over the last 20 sessions, rows", 100 * (rows - rows0) / rows0, 2, "%")
        goal("event log growth over the last 20 sessions, bytes", 100 * (size - size0) / size0, 2, "%")
    if live is not None:  # every symbol asset's pages, the dialog, a symbol added, "backfill missing"
        LIVE.remove(live)
        live.close()
        year_ui({"home": str(home), "dagster_db": dagster_db}, 1)
    instance.dispose()
    print("goals missed: " + (", ".join(MISSED) if MISSED else "none"))
    return 1 if MISSED else 0


if __name__ == "__main__":
    sys.exit(main())
