"""Operations commands of symbol-pipeline: `backfill` a range, `onboard` the queue."""

from __future__ import annotations

import argparse
import datetime as dt

import dagster as dg
import pandas as pd

from symbol_pipeline.cli.console import RunConsole, execute_here, request_and_follow
from symbol_pipeline.cli.errors import CliError
from symbol_pipeline.cli.window_cmd import first_partition
from symbol_pipeline.config import parse_date
from symbol_pipeline.definitions import build_definitions, recovery_policy
from symbol_pipeline.lib import sessions
from symbol_pipeline.lib.symbols import parse_symbol_list
from symbol_pipeline.runs.follow import RunFollower, Summary, expected_materializations, follow
from symbol_pipeline.runs.instance import get_instance
from symbol_pipeline.runs.keys import (
    BACKFILL_RUN_KIND,
    ONBOARDING_PART_TAG,
    ONBOARDING_RUN_KIND,
    QUEUE_IDS_TAG,
    RUN_KIND_TAG,
    SYMBOL_DIMENSION,
)
from symbol_pipeline.runs.requests import InvalidRunDateError, check_run_date, daemon_serving
from symbol_pipeline.runs.submit import (
    fail_orphaned_runs,
    onboarding_run_requests,
    register_symbols,
    run_onboarding,
    run_symbol_layer,
)
from symbol_pipeline.services import onboarding, window
from symbol_pipeline.storage import onboarding as queue_store
from symbol_pipeline.storage import universe
from symbol_pipeline.storage.database import get_engine


def _session(text: str, what: str, settings) -> dt.date:
    """A session to run, inside the stored window (runs.requests.check_run_date)."""
    day = parse_date(text)
    try:
        return check_run_date(day, first_partition(settings), what, window.include_hint(day, settings.window_rule))
    except InvalidRunDateError as exc:
        raise CliError(str(exc)) from None


def _positive_limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be within 1..10000, got {value}")
    return value


def cmd_backfill(args: argparse.Namespace) -> int:
    """The symbol layer over [start, end] × symbols: asked of the daemon when one serves the
    instance, else executed in this process; followed through the instance either way."""
    settings = args.settings
    start = _session(args.start, "--start", settings)
    end = _session(args.end, "--end", settings)
    if end < start:
        raise CliError(f"--end {end} is before --start {start}")
    symbols = None
    if args.symbols is not None:
        symbols = parse_symbol_list(args.symbols)
        if not symbols:
            raise CliError(f"--symbols {args.symbols!r} names no symbol (comma-separated tickers, e.g. AAPL,MSFT)")
    console = RunConsole(verbose=args.verbose)
    engine = get_engine(settings.database_url)
    with get_instance(settings.data_dir) as instance:
        orphans = fail_orphaned_runs(instance)
        if orphans:
            console.line(f"marked {len(orphans)} run(s) failed whose process is gone: {', '.join(orphans)}")
        if symbols:
            with engine.begin() as conn:
                new = universe.add_symbols(conn, symbols, status=universe.STATUS_PENDING)
            register_symbols(instance, symbols)
            if new:
                console.line(f"new symbols (pending until their betas exist): {', '.join(new)}")
        elif not instance.get_dynamic_partitions(SYMBOL_DIMENSION):
            raise CliError("the `symbol` partition is empty: pass --symbols or onboard symbols first")
        n_sessions = len(sessions.sessions_between(start, end))
        n_symbols = len(symbols) if symbols else len(instance.get_dynamic_partitions(SYMBOL_DIMENSION))
        console.line(f"backfill {start}..{end} ({n_sessions} sessions) × {n_symbols} symbols")
        follower = RunFollower(instance, total=expected_materializations(n_sessions, n_symbols))
        if daemon_serving(instance):
            summary = request_and_follow(engine, instance, console, follower, "backfill", start, end, symbols, "cli")
        else:
            defs = build_definitions(settings)
            summary = execute_here(console, follower, lambda run_ids: run_symbol_layer(
                instance, defs, start, end, symbols, tags={RUN_KIND_TAG: BACKFILL_RUN_KIND},
                run_config=console.run_config, run_ids=run_ids))
    next_steps = [f"`symbol-pipeline betas --date {end}`", "the runs in the Dagster UI: `dagster dev`"]
    return console.summary(summary, f"backfill {start}..{end}", next_steps)


def cmd_onboard(args: argparse.Namespace) -> int:
    """The onboarding queue, once: followed while the daemon's sensor takes it, else planned as the
    sensor plans it and executed here on the path of `run` and `backfill` (runs.submit)."""
    settings = args.settings
    engine = get_engine(settings.database_url)
    console = RunConsole(verbose=args.verbose)
    with get_instance(settings.data_dir) as instance:
        orphans = fail_orphaned_runs(instance)
        if orphans:
            console.line(f"marked {len(orphans)} run(s) failed whose process is gone: {', '.join(orphans)}")
        if daemon_serving(instance):
            summary, symbols = _follow_daemon_onboarding(engine, instance, console)
        else:
            summary, symbols = _onboard_here(engine, instance, settings, console, args)
    if summary is None:
        console.line("the onboarding queue is empty")
        return 0
    _statuses(engine, symbols, console)
    return console.summary(summary, "onboarding", ["`symbol-pipeline symbols status SYMBOLS`"])


def _onboard_here(engine, instance, settings, console: RunConsole, args) -> tuple[Summary | None, list[str]]:
    # The daemon's sensor keeps its own cursor; rows it claimed are left to it.
    plan = onboarding.plan_onboarding(
        engine, instance.get_dynamic_partitions(SYMBOL_DIMENSION), None,
        now=pd.Timestamp.now(tz="UTC"), first_partition=first_partition(settings),
        limit=args.limit, reclaim=False,
    )
    if not plan.claimed:
        return None, []
    requests = [
        r for r in onboarding_run_requests(plan) if args.history or r.tags.get(ONBOARDING_PART_TAG) != "history"
    ]
    symbols = list(dict.fromkeys(row.symbol for row in plan.claimed))
    console.line(f"onboarding {len(symbols)} queued symbol(s) in {len(requests)} run(s), in this process")
    defs = build_definitions(settings)
    summary = execute_here(console, RunFollower(instance), lambda run_ids: run_onboarding(
        engine, instance, defs, plan, requests, recovery_policy(settings), run_config=console.run_config,
        run_ids=run_ids))
    return summary, symbols


def _follow_daemon_onboarding(engine, instance, console: RunConsole) -> tuple[Summary | None, list[str]]:
    """A daemon serves the instance: its symbol_onboarding_sensor takes the queue. Follow the runs
    it starts for the rows waiting now until every one of them is completed or failed."""
    waiting = {r["id"]: r["symbol"] for r in queue_store.queue_rows(engine) if r["status"] in ("pending", "processing")}
    if not waiting:
        return None, []
    console.line(f"a daemon serves this instance: its symbol_onboarding_sensor onboards {len(waiting)} queued "
                 f"symbol(s); following its runs")
    follower = RunFollower(instance)

    def run_ids() -> list[str]:
        runs = instance.get_runs(dg.RunsFilter(tags={RUN_KIND_TAG: ONBOARDING_RUN_KIND}), limit=50)
        ids = {str(i) for i in waiting}
        return [r.run_id for r in runs if ids & set(r.tags.get(QUEUE_IDS_TAG, "").split(","))]

    def done() -> bool:
        rows = queue_store.queue_rows(engine, list(set(waiting.values())))
        return all(r["status"] not in ("pending", "processing") for r in rows if r["id"] in waiting)

    return follow(follower, run_ids, done, console.update, interval=1.0), list(dict.fromkeys(waiting.values()))


def _statuses(engine, symbols: list[str], console: RunConsole) -> None:
    """Each onboarded symbol's status, and why it failed if it did."""
    with engine.connect() as conn:
        for symbol in symbols:
            status = universe.symbol_status(conn, symbol)
            console.line(f"{symbol}\t{status.status if status else 'unknown'}" + (
                f"\t{status.error_message}" if status and status.error_message else ""))


def register(subparsers) -> None:
    """Add `backfill` and `onboard` to symbol-pipeline's subcommands."""
    backfill = subparsers.add_parser("backfill", help="materialise the symbol layer over a range of sessions")
    backfill.add_argument("--start", required=True, help="YYYY-MM-DD, an NYSE session")
    backfill.add_argument("--end", required=True, help="YYYY-MM-DD, an NYSE session, not before --start")
    backfill.add_argument("--symbols", help="comma-separated tickers (default: every key of the symbol partition)")
    backfill.add_argument("--verbose", action="store_true", help="also print Dagster's per-event log lines")
    backfill.set_defaults(func=cmd_backfill)

    onboard = subparsers.add_parser("onboard", help="process the onboarding queue once (followed when a daemon serves it)")
    onboard.add_argument("--limit", type=_positive_limit, default=onboarding.ONBOARDING_BATCH,
                         help="queue rows to take (1..10000)")
    onboard.add_argument(
        "--history", action=argparse.BooleanOptionalAction, default=True,
        help="also fill the history window before the latest session (default: yes)",
    )
    onboard.add_argument("--verbose", action="store_true", help="also print Dagster's per-event log lines")
    onboard.set_defaults(func=cmd_onboard)
