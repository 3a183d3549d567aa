"""Symbol-layer commands: `run` one session, print stored `betas`, manage the `symbols` universe."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import sys

from symbol_pipeline.cli.console import RunConsole, execute_here, request_and_follow
from symbol_pipeline.cli.errors import CliError
from symbol_pipeline.cli.errors import err as _err
from symbol_pipeline.cli.window_cmd import first_partition
from symbol_pipeline.config import parse_date
from symbol_pipeline.definitions import build_definitions
from symbol_pipeline.defs.resources import price_source_resource
from symbol_pipeline.lib import sessions
from symbol_pipeline.lib.factors import FACTOR_NAMES, REGRESSOR_ETFS, with_regressor_etfs
from symbol_pipeline.lib.rules import EARLIEST_DATE, today
from symbol_pipeline.lib.symbols import parse_symbol_list, validate_symbols
from symbol_pipeline.lib.text import printable
from symbol_pipeline.runs.follow import RunFollower, expected_materializations
from symbol_pipeline.runs.instance import get_instance
from symbol_pipeline.runs.keys import DAILY_RUN_KIND, RUN_KIND_TAG, SYMBOL_DIMENSION
from symbol_pipeline.runs.requests import InvalidRunDateError, OpenRequestError, check_run_date, daemon_serving
from symbol_pipeline.runs.submit import fail_orphaned_runs, register_symbols, run_portfolio_refresh, run_symbol_layer
from symbol_pipeline.services import symbols as symbol_service
from symbol_pipeline.services import window
from symbol_pipeline.storage import betas as beta_store
from symbol_pipeline.storage import universe
from symbol_pipeline.storage.database import get_engine

BETA_CSV_HEADER = ("symbol", "factor", "beta", "r_squared", "observations", "quality")


def _session_or_default(text: str | None, settings) -> dt.date:
    """The session to run: --date checked (a session inside the partitions, not after the latest
    completed one), or the latest completed session."""
    day = sessions.latest_completed_session() if text is None else parse_date(text)
    try:
        return check_run_date(day, first_partition(settings), "--date" if text is not None else "the latest session",
                              window.include_hint(day, settings.window_rule))
    except InvalidRunDateError as exc:
        raise CliError(str(exc)) from None


def _symbols_arg(text: str | None) -> list[str] | None:
    """None without --symbols; the tickers otherwise. `--symbols ','` names none: an error, not the universe."""
    if text is None:
        return None
    symbols = parse_symbol_list(text)
    if not symbols:
        raise CliError(f"--symbols {text!r} names no symbol (comma-separated tickers, e.g. AAPL,MSFT)")
    return symbols


def _default_universe(source) -> list[str]:
    names = None
    if hasattr(source, "universe"):
        names = source.universe()
    elif source.available_symbols() is not None:
        names = source.available_symbols()
    if not names:
        raise CliError("the universe is empty: add symbols with `symbol-pipeline symbols add A,B,...`")
    return [s for s in validate_symbols(names) if s not in REGRESSOR_ETFS]


def cmd_run(args: argparse.Namespace) -> int:
    settings = args.settings
    day = _session_or_default(args.date, settings)
    requested = _symbols_arg(args.symbols)
    console = RunConsole(verbose=args.verbose)
    engine = get_engine(settings.database_url)
    with engine.begin() as conn:
        if requested:
            new = universe.add_symbols(conn, requested, status=universe.STATUS_PENDING)
            symbols = requested
        else:
            symbols = [s for s in universe.symbols_with_status(conn) if s not in REGRESSOR_ETFS]
            new = []
            if not symbols:
                source = price_source_resource(
                    settings.price_source,
                    synthetic_seed=settings.synthetic_seed,
                    synthetic_universe_size=settings.synthetic_universe_size,
                ).source()
                symbols = _default_universe(source)
                universe.add_symbols(conn, symbols, status=universe.STATUS_ACTIVE)
                console.line(f"empty universe: seeded {len(symbols)} symbols from the {settings.price_source} source")
    run_symbols = with_regressor_etfs(symbols)
    console.line(f"symbol layer for {day}: {len(run_symbols)} symbols ({len(new)} new), source {settings.price_source}")
    with get_instance(settings.data_dir) as instance:
        orphans = fail_orphaned_runs(instance)
        if orphans:
            console.line(f"marked {len(orphans)} run(s) failed whose process is gone: {', '.join(orphans)}")
        register_symbols(instance, run_symbols)
        selection = run_symbols if requested else None
        n_symbols = len(run_symbols) if requested else len(instance.get_dynamic_partitions(SYMBOL_DIMENSION))
        follower = RunFollower(instance, total=expected_materializations(1, n_symbols))
        tags = {RUN_KIND_TAG: DAILY_RUN_KIND}
        if daemon_serving(instance):
            try:
                summary = request_and_follow(engine, instance, console, follower, "daily", day, day, selection, "cli")
            except OpenRequestError as exc:
                raise CliError(f"{exc}: runs {', '.join(exc.request.run_ids) or 'not started yet'}") from None
        else:
            defs = build_definitions(settings)
            summary = execute_here(console, follower, lambda run_ids: run_symbol_layer(
                instance, defs, day, day, selection, tags=tags, run_config=console.run_config, run_ids=run_ids))
            if summary.exit_code != 1:
                # The success sensor requests this under the daemon; here no daemon serves the instance.
                refresh = run_portfolio_refresh(instance, defs, run_config=console.run_config)
                if not refresh.success:
                    console.line(f"portfolio refresh run {refresh.run_ids[0]} FAILED")
                if day == sessions.latest_completed_session():
                    # Without a daemon this run is the daily step: the window moves with it.
                    _move_window(instance, engine, settings, console)
    if requested:
        for line in skipped_lines(engine, day, requested):
            console.line(line)
    next_steps = [f"`symbol-pipeline betas --date {day}`", "the runs in the Dagster UI: `dagster dev`"]
    return console.summary(summary, f"symbol layer {day}", next_steps)


def _move_window(instance, engine, settings, console: RunConsole) -> None:
    # The window's code is needed by the daily step only: `symbols list` and friends stay light.
    from symbol_pipeline.defs.symbols.window import partitions_for
    from symbol_pipeline.runs.window import move_window  # the same reason

    report = move_window(instance, engine, settings.window_rule, partitions_for, by="symbol-pipeline run")
    if report.plan.moves:
        console.line(report.lines()[0])


def skipped_lines(engine, day: dt.date, requested: list[str]) -> list[str]:
    """One line per symbol of an explicit --symbols list that has no beta on `day`: why, and the
    command that recovers it (a run skips `error` symbols rather than fetch them again)."""
    with engine.connect() as conn:
        computed = set(beta_store.read_exposures(conn, day, requested)["symbol"])
        lines = []
        for symbol in requested:
            if symbol in computed:
                continue
            status = universe.symbol_status(conn, symbol)
            state = status.status if status else "unknown"
            why = (status.error_message or "") if status else ""
            fix = (f"`symbol-pipeline symbols retry {symbol}`, then this run again" if state == "error"
                   else f"`symbol-pipeline symbols status {symbol}`")
            lines.append(f"skipped {symbol}: {state}" + (f" ({why})" if why else "") + f"; recover with {fix}")
    return lines


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def cmd_betas(args: argparse.Namespace) -> int:
    engine = get_engine(args.settings.database_url)
    symbols = _symbols_arg(args.symbols)
    day = parse_date(args.date) if args.date else None
    if day is not None and not EARLIEST_DATE <= day <= today():
        raise CliError(f"--date {day} is outside {EARLIEST_DATE} .. today ({today()})")
    with engine.connect() as conn:
        day = day or beta_store.latest_exposure_date(conn)
        if day is None:
            raise CliError("no betas stored yet: run `symbol-pipeline run` first")
        frame = beta_store.read_exposures(conn, day, symbols)
    if frame.empty:
        raise CliError(f"no betas stored for {day}" + (f" and {', '.join(symbols)}" if symbols else ""))
    if symbols:
        unknown = sorted(set(symbols) - set(frame["symbol"]))
        if unknown:
            _err(f"no betas on {day} for: {', '.join(unknown)}")
    order = {name: i for i, name in enumerate(FACTOR_NAMES)}
    frame = frame.assign(_o=frame["factor"].map(order)).sort_values(["symbol", "_o"])
    rows = [
        (
            r.symbol,
            r.factor,
            _fmt(None if r.beta is None else float(r.beta)),
            _fmt(None if r.r_squared is None else float(r.r_squared)),
            str(int(r.observations)),
            r.quality,
        )
        for r in frame.itertuples(index=False)
    ]
    if args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(BETA_CSV_HEADER)
        writer.writerows(rows)
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(BETA_CSV_HEADER)]
        print(f"betas on {day}")
        print("  ".join(h.ljust(w) for h, w in zip(BETA_CSV_HEADER, widths)))
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    return 0


def cmd_symbols(args: argparse.Namespace) -> int:
    if args.action not in ("list", "queue") and not args.symbols:
        raise CliError(f"`symbols {args.action}` needs symbols, e.g. AAPL,MSFT")
    symbols = _symbols_arg(args.symbols) if args.action not in ("list", "queue") else []
    engine = get_engine(args.settings.database_url)
    if args.action == "list":
        with engine.connect() as conn:
            for status in ("active", "pending", "error", "delisted"):
                for symbol in universe.symbols_with_status(conn, [status]):
                    print(f"{symbol}\t{status}")
        return 0
    if args.action in ("queue", "retry", "reject"):
        return operator_symbols(engine, args.action, symbols, args)
    if args.action == "add":
        with engine.begin() as conn:
            queued = universe.enqueue_symbols(conn, symbols, requested_by="cli", priority=args.priority)
        for symbol in symbols:
            print(f"{symbol}\t{'queued for onboarding' if symbol in queued else 'already known'}")
        return 0
    code = 0
    with engine.connect() as conn:
        for symbol in symbols:
            status = universe.symbol_status(conn, symbol)
            if status is None:
                print(f"{symbol}\tunknown (not in the universe)")
                code = 1
                continue
            print(
                f"{symbol}\t{status.status}\tlast prices {status.last_price_date or '-'}\t"
                f"last factors {status.last_factor_date or '-'}"
                + (f" (stale: the universe is at {status.latest_factor_date})" if status.stale else "")
                + (f"\tqueue {status.queue_status}" if status.queue_status else "")
                + (f"\terror: {printable(status.error_message)}" if status.error_message else "")
            )
    return code


def operator_symbols(engine, action: str, symbols: list[str], args: argparse.Namespace) -> int:
    """`symbols queue | retry | reject`: what waits or failed, and the operator's two answers."""
    if action == "queue":
        rows = symbol_service.symbol_queue(engine, ("queued", "error", "delisted") if args.delisted else ("queued", "error"))
        for row in rows:
            retry = f"next retry {row['next_retry_at']}" if row["next_retry_at"] else "no automatic retry"
            waiting = f"queue {row['queue_status']} p{row['priority']} by {row['requested_by']}" if row["queue_status"] else ""
            # printable: a requester's name or a reason stored with a newline or an escape sequence
            # (before the rules refused them) prints as \n or \x1b, one line per symbol.
            print("\t".join(printable(cell) for cell in [
                row["symbol"], row["status"], waiting,
                f"{row['retry_attempts']} failed attempt(s), {retry}" if row["status"] == "error" else "",
                row["error_message"] or ""]).rstrip())
        _err(f"{len(rows)} symbol(s)")
        return 0
    if action == "retry":
        result = symbol_service.retry_symbols(engine, symbols, "cli")
        done, other, verb = result["requeued"], result["not_retried"], "queued again"
    else:
        result = symbol_service.reject_symbols(engine, symbols, args.reason)
        done, other, verb = result["rejected"], result["not_rejected"], "rejected"
    for symbol in done:
        print(f"{symbol}\t{verb}")
    for symbol in other:
        print(f"{symbol}\tnot {verb} (unknown, already queued, or not in a state that allows it: "
              f"`symbols status {symbol}`)")
    return 0 if done else 1


def _priority(text: str) -> int:
    value = int(text)
    if not -1000 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"priority must be within -1000..1000, got {value}")
    return value


def register(sub) -> None:
    """Add `run`, `betas` and `symbols` to symbol-pipeline's subcommands."""
    run = sub.add_parser("run", help="materialise the symbol layer for one session through Dagster")
    run.add_argument("--date", help="YYYY-MM-DD, an NYSE session (default: the latest completed one)")
    run.add_argument("--symbols", help="comma-separated tickers (default: every active symbol)")
    run.add_argument("--verbose", action="store_true", help="also print Dagster's per-event log lines")
    run.set_defaults(func=cmd_run)

    betas = sub.add_parser("betas", help="print stored betas")
    betas.add_argument("--date", help="YYYY-MM-DD (default: the latest date with betas)")
    betas.add_argument("--symbols", help="comma-separated tickers (default: all)")
    betas.add_argument("--format", choices=("csv", "table"), default="table")
    betas.set_defaults(func=cmd_betas)

    symbols = sub.add_parser("symbols", help="the symbol universe")
    symbols.add_argument("action", choices=("list", "add", "status", "queue", "retry", "reject"),
                         help="queue: queued, failed (and --delisted) symbols; retry: queue failed or delisted "
                              "symbols again now; reject: refuse queued or failed symbols for good")
    symbols.add_argument("symbols", nargs="?", help="comma-separated tickers")
    symbols.add_argument("--priority", type=_priority, default=universe.OPERATOR_PRIORITY,
                         help=f"onboarding priority, higher first (default {universe.OPERATOR_PRIORITY}; users' "
                              f"requests are queued at {universe.USER_PRIORITY}, automatic retries at "
                              f"{universe.RETRY_PRIORITY})")
    symbols.add_argument("--reason", default="not supported", help="with reject: the reason users see")
    symbols.add_argument("--delisted", action="store_true", help="with queue: also list delisted symbols")
    symbols.set_defaults(func=cmd_symbols)
