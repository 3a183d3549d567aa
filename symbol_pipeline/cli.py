"""symbol-pipeline: run the symbol layer, read betas, manage symbols (and portfolios, see cli_portfolio)."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import sys
import time

from symbol_pipeline.config import apply_dagster_event_settings, get_settings, parse_date
from symbol_pipeline.lib import sessions
from symbol_pipeline.lib.factors import FACTOR_NAMES, REGRESSOR_ETFS
from symbol_pipeline.lib.symbols import InvalidSymbolError, parse_symbol_list, validate_symbols

BETA_CSV_HEADER = ("symbol", "factor", "beta", "r_squared", "observations", "quality")


class CliError(Exception):
    """A user error: printed on stderr, exit status 1."""


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _session_or_default(text: str | None) -> dt.date:
    if text is None:
        return sessions.latest_completed_session()
    day = parse_date(text)
    if not sessions.is_session(day):
        raise CliError(f"{day} is not an NYSE trading session (weekend or exchange holiday)")
    return day


def _symbols_arg(text: str | None) -> list[str] | None:
    return parse_symbol_list(text) if text else None


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
    from symbol_pipeline.defs.launch import get_instance, register_symbols, run_symbol_layer
    from symbol_pipeline.sources.registry import get_price_source
    from symbol_pipeline.storage import universe
    from symbol_pipeline.storage.database import get_engine

    started = time.perf_counter()
    day = _session_or_default(args.date)
    requested = _symbols_arg(args.symbols)
    engine = get_engine()
    settings = get_settings()
    with engine.begin() as conn:
        if requested:
            new = universe.add_symbols(conn, requested, status=universe.STATUS_PENDING)
            symbols = requested
        else:
            symbols = [s for s in universe.symbols_with_status(conn) if s not in REGRESSOR_ETFS]
            new = []
            if not symbols:
                symbols = _default_universe(get_price_source(settings.price_source))
                universe.add_symbols(conn, symbols, status=universe.STATUS_ACTIVE)
                _err(f"empty universe: seeded {len(symbols)} symbols from the {settings.price_source} source")
    run_symbols = list(dict.fromkeys([*symbols, *REGRESSOR_ETFS]))
    _err(f"symbol layer for {day}: {len(run_symbols)} symbols ({len(new)} new), source {settings.price_source}")
    with get_instance() as instance:
        register_symbols(instance, run_symbols)
        result = run_symbol_layer(
            instance, day, day, run_symbols if requested else None, progress=lambda m: _err(f"  {m}")
        )
    elapsed = time.perf_counter() - started
    if not result.success:
        _err(f"run failed after {elapsed:.1f}s; see run(s) {', '.join(result.run_ids)} in the Dagster UI")
        return 1
    from symbol_pipeline.defs.symbols.sensors import refresh_portfolios

    # The success sensor does this under the daemon; a CLI run may have no daemon beside it.
    refreshed = refresh_portfolios(engine)
    _err(f"done in {elapsed:.1f}s: runs {', '.join(result.run_ids)}; portfolios: {refreshed}")
    return 0


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def cmd_betas(args: argparse.Namespace) -> int:
    from symbol_pipeline.storage import exposures
    from symbol_pipeline.storage.database import get_engine

    engine = get_engine()
    symbols = _symbols_arg(args.symbols)
    with engine.connect() as conn:
        day = parse_date(args.date) if args.date else exposures.latest_exposure_date(conn)
        if day is None:
            raise CliError("no betas stored yet: run `symbol-pipeline run` first")
        frame = exposures.read_exposures(conn, day, symbols)
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
    from symbol_pipeline.storage import universe
    from symbol_pipeline.storage.database import get_engine

    engine = get_engine()
    if args.action == "list":
        with engine.connect() as conn:
            for status in ("active", "pending", "error", "delisted"):
                for symbol in universe.symbols_with_status(conn, [status]):
                    print(f"{symbol}\t{status}")
        return 0
    if not args.symbols:
        raise CliError(f"`symbols {args.action}` needs symbols, e.g. AAPL,MSFT")
    symbols = parse_symbol_list(args.symbols)
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
                + (f"\terror: {status.error_message}" if status.error_message else "")
            )
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symbol-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="materialise the symbol layer for one session through Dagster")
    run.add_argument("--date", help="YYYY-MM-DD, an NYSE session (default: the latest completed one)")
    run.add_argument("--symbols", help="comma-separated tickers (default: every active symbol)")
    run.set_defaults(func=cmd_run)

    betas = sub.add_parser("betas", help="print stored betas")
    betas.add_argument("--date", help="YYYY-MM-DD (default: the latest date with betas)")
    betas.add_argument("--symbols", help="comma-separated tickers (default: all)")
    betas.add_argument("--format", choices=("csv", "table"), default="table")
    betas.set_defaults(func=cmd_betas)

    symbols = sub.add_parser("symbols", help="the symbol universe")
    symbols.add_argument("action", choices=("list", "add", "status"))
    symbols.add_argument("symbols", nargs="?", help="comma-separated tickers")
    symbols.add_argument("--priority", type=int, default=0, help="onboarding priority (higher first)")
    symbols.set_defaults(func=cmd_symbols)

    from symbol_pipeline import cli_ops, cli_portfolio

    cli_ops.register(sub)
    cli_portfolio.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import warnings

    # Dagster flags beta and preview APIs on every import; they say nothing to a CLI user.
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", message=".*(beta|preview|experimental).*")
    args = build_parser().parse_args(argv)
    apply_dagster_event_settings()
    try:
        return args.func(args)
    except (CliError, InvalidSymbolError, ValueError) as exc:
        _err(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
