"""The `symbol-pipeline` parser and the one place that turns errors into exit codes.

A run's dates and symbols are checked (`early_check`) before the commands are imported: they bring
Dagster and the definitions, seconds of imports that a mistyped date should not wait for.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from symbol_pipeline.cli.errors import CliError, err
from symbol_pipeline.config import apply_dagster_event_settings, get_settings, parse_date
from symbol_pipeline.lib.rules import RuleError
from symbol_pipeline.lib.run_dates import InvalidRunDateError, check_run_date
from symbol_pipeline.lib.sessions import NotATradingDayError, OutsideCalendarError
from symbol_pipeline.lib.symbols import InvalidSymbolError, parse_symbol_list
from symbol_pipeline.services import window
from symbol_pipeline.storage.dialect import cached_engine

# What a user can cause and put right (a bad argument, input or setting, a missing file): one line
# on stderr, exit 1. Any other exception is a bug: one line naming it, its traceback with --verbose.
USER_ERRORS = (CliError, RuleError, InvalidSymbolError, InvalidRunDateError, NotATradingDayError,
               OutsideCalendarError, OSError)

# The commands whose dates are runs of the symbol layer, and the options holding them.
_RUN_DATE_OPTIONS = {"run": ("--date",), "backfill": ("--start", "--end")}


def build_parser() -> argparse.ArgumentParser:
    # The command modules import Dagster, the definitions and the API: only once a parser is needed.
    from symbol_pipeline.cli import events, operations, portfolio, symbols, window_cmd

    parser = argparse.ArgumentParser(
        prog="symbol-pipeline",
        description="Factor betas per symbol as Dagster assets, aggregated per portfolio.",
    )
    # `--verbose` of run, backfill and onboard also shows Dagster's log lines; this one, before any
    # command, only the traceback of an unexpected error.
    parser.add_argument("--verbose", dest="traceback", action="store_true",
                        help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True)
    symbols.register(sub)
    operations.register(sub)
    portfolio.register(sub)
    events.register(sub)
    window_cmd.register(sub)
    return parser


def early_check(argv: list[str]) -> None:
    """CliError for a bad run date or an empty --symbols of `run` / `backfill`, before the heavy
    imports. The commands check the same again; this only makes the failure fast."""
    if not argv or argv[0] not in _RUN_DATE_OPTIONS:
        return
    light = argparse.ArgumentParser(add_help=False)
    for option in (*_RUN_DATE_OPTIONS[argv[0]], "--symbols"):
        light.add_argument(option)
    known, _ = light.parse_known_args(argv[1:])
    settings = get_settings()
    first_partition = None
    for option in _RUN_DATE_OPTIONS[argv[0]]:
        text = getattr(known, option.lstrip("-"))
        if text is not None:
            day = parse_date(text)
            if first_partition is None:  # read once, without migrating: this check must stay light
                first_partition = window.peek_first_date(cached_engine(settings.database_url), settings.window_rule)
            check_run_date(day, first_partition, option, window.include_hint(day, settings.window_rule))
    if known.symbols is not None and not parse_symbol_list(known.symbols):
        raise CliError(f"--symbols {known.symbols!r} names no symbol (comma-separated tickers, e.g. AAPL,MSFT)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        early_check(argv)
    except USER_ERRORS as exc:  # InvalidRunDateError, InvalidSymbolError, a bad date or setting
        err(f"error: {exc}")
        return 1
    # Dagster flags beta and preview APIs on every import; they say nothing to a CLI user.
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", message=".*(beta|preview|experimental).*")
    args = build_parser().parse_args(argv)
    # Imported with the commands (above): the service errors a command may raise.
    from symbol_pipeline.services.portfolio import ServiceError

    apply_dagster_event_settings()
    try:
        # The entry point reads the settings once; commands take them from `args`.
        args.settings = get_settings()
        return args.func(args)
    except (*USER_ERRORS, ServiceError) as exc:
        err(f"error: {exc}")
        return 1
    except sa_exc.SQLAlchemyError as exc:
        # An unreachable or refusing database: one line naming it, not a driver traceback.
        err(f"error: database {_where(args)}: {_first_line(exc)}")
        return 1
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    except Exception as exc:  # a bug, not the user's input: say so, and show where with --verbose
        if getattr(args, "verbose", False) or args.traceback:
            traceback.print_exc()
        else:
            err(f"error: unexpected {type(exc).__name__}: {_first_line(exc)} (`--verbose` shows the traceback)")
        return 1


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _where(args: argparse.Namespace) -> str:
    settings = getattr(args, "settings", None)
    url = getattr(args, "database_url", None) or (settings.database_url if settings else "")
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "(unparsable URL)"


if __name__ == "__main__":
    sys.exit(main())
