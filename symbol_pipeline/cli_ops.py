"""Operations commands of symbol-pipeline: `backfill` a range, `onboard` the queue without the daemon."""

from __future__ import annotations

import argparse
import sys
import time


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _session(text: str, what: str):
    from symbol_pipeline.cli import CliError
    from symbol_pipeline.config import parse_date
    from symbol_pipeline.lib import sessions

    day = parse_date(text)
    if not sessions.is_session(day):
        raise CliError(f"{what} {day} is not an NYSE trading session (weekend or exchange holiday)")
    return day


def cmd_backfill(args: argparse.Namespace) -> int:
    """Materialise the symbol layer over [start, end] × symbols in-process, through the instance."""
    from symbol_pipeline.cli import CliError
    from symbol_pipeline.defs.launch import get_instance, register_symbols, run_symbol_layer
    from symbol_pipeline.defs.partitions import SYMBOL_DIMENSION, trading_date_partitions
    from symbol_pipeline.lib import sessions
    from symbol_pipeline.lib.symbols import parse_symbol_list
    from symbol_pipeline.storage import universe
    from symbol_pipeline.storage.database import get_engine

    start, end = _session(args.start, "--start"), _session(args.end, "--end")
    if end < start:
        raise CliError(f"--end {end} is before --start {start}")
    first_partition = trading_date_partitions.get_first_partition_key()
    if start.isoformat() < first_partition:
        raise CliError(f"--start {start} is before the first date partition {first_partition}")
    if end > sessions.latest_completed_session():
        raise CliError(f"--end {end} is after the latest completed session {sessions.latest_completed_session()}")
    symbols = parse_symbol_list(args.symbols) if args.symbols else None
    engine = get_engine()
    started = time.perf_counter()
    with get_instance() as instance:
        if symbols:
            with engine.begin() as conn:
                new = universe.add_symbols(conn, symbols, status=universe.STATUS_PENDING)
            register_symbols(instance, symbols)
            if new:
                _err(f"new symbols (pending until their betas exist): {', '.join(new)}")
        elif not instance.get_dynamic_partitions(SYMBOL_DIMENSION):
            raise CliError("the `symbol` partition is empty: pass --symbols or onboard symbols first")
        n_sessions = len(sessions.sessions_between(start, end))
        _err(f"backfill {start}..{end} ({n_sessions} sessions) × {len(symbols) if symbols else 'every'} symbols")
        result = run_symbol_layer(instance, start, end, symbols, progress=lambda m: _err(f"  {m}"))
    elapsed = time.perf_counter() - started
    if not result.success:
        _err(f"backfill failed after {elapsed:.1f}s; see run(s) {', '.join(result.run_ids)} in the Dagster UI")
        return 1
    _err(f"done in {elapsed:.1f}s: runs {', '.join(result.run_ids)}")
    return 0


def cmd_onboard(args: argparse.Namespace) -> int:
    """What symbol_onboarding_sensor and its runs do, once, in this process."""
    from symbol_pipeline.defs.launch import get_instance
    from symbol_pipeline.defs.partitions import SYMBOL_DIMENSION
    from symbol_pipeline.defs.symbols.sensors import ONBOARDING_PART_TAG, after_symbol_layer_success, plan_onboarding
    from symbol_pipeline.definitions import build_definitions
    from symbol_pipeline.storage import universe
    from symbol_pipeline.storage.database import get_engine

    engine = get_engine()
    started = time.perf_counter()
    with get_instance() as instance:
        # The daemon's sensor keeps its own cursor; rows it claimed are left to it.
        plan = plan_onboarding(
            engine, instance.get_dynamic_partitions(SYMBOL_DIMENSION), None, limit=args.limit, reclaim=False
        )
        if not plan.claimed:
            _err("the onboarding queue is empty")
            return 0
        if plan.new_keys:
            instance.add_dynamic_partitions(SYMBOL_DIMENSION, plan.new_keys)
        job = build_definitions().resolve_job_def("symbol_layer_job")
        requests = [r for r in plan.run_requests if args.history or r.tags.get(ONBOARDING_PART_TAG) != "history"]
        ok = True
        for request in requests:
            _err(
                f"  {request.tags[ONBOARDING_PART_TAG]}: {request.tags['dagster/asset_partition_range_start']}"
                f" .. {request.tags['dagster/asset_partition_range_end']}"
            )
            result = job.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)
            ok = ok and result.success
            if result.success:
                after_symbol_layer_success(engine, instance, request.tags)
            else:
                _err(f"  run {result.run_id} failed; see it in the Dagster UI")
    code = 0
    with engine.connect() as conn:
        for symbol in dict.fromkeys(r.symbol for r in plan.claimed):
            status = universe.symbol_status(conn, symbol)
            print(f"{symbol}\t{status.status if status else 'unknown'}" + (
                f"\t{status.error_message}" if status and status.error_message else ""))
    _err(f"onboarded {len(plan.claimed)} queued symbol(s) in {time.perf_counter() - started:.1f}s")
    if not ok:
        code = 1
    return code


def register(subparsers) -> None:
    """Add `backfill` and `onboard` to symbol-pipeline's subcommands."""
    from symbol_pipeline.defs.symbols.sensors import ONBOARDING_BATCH

    backfill = subparsers.add_parser("backfill", help="materialise the symbol layer over a range of sessions")
    backfill.add_argument("--start", required=True, help="YYYY-MM-DD, an NYSE session")
    backfill.add_argument("--end", required=True, help="YYYY-MM-DD, an NYSE session, not before --start")
    backfill.add_argument("--symbols", help="comma-separated tickers (default: every key of the symbol partition)")
    backfill.set_defaults(func=cmd_backfill)

    onboard = subparsers.add_parser("onboard", help="process the onboarding queue once, without the daemon")
    onboard.add_argument("--limit", type=int, default=ONBOARDING_BATCH, help="queue rows to take")
    onboard.add_argument(
        "--history", action=argparse.BooleanOptionalAction, default=True,
        help="also fill the history window before the latest session (default: yes)",
    )
    onboard.set_defaults(func=cmd_onboard)
