"""`symbol-pipeline window show|move`: the stored date partitions (services.window, runs/window.py)."""

from __future__ import annotations

import argparse
import datetime as dt

from symbol_pipeline.cli.errors import CliError
from symbol_pipeline.config import Settings, parse_date
from symbol_pipeline.lib import sessions
from symbol_pipeline.runs.instance import get_instance
from symbol_pipeline.services import window
from symbol_pipeline.storage.database import get_engine


def first_partition(settings: Settings) -> dt.date:
    """The first date partition every process of this deployment builds (stored, or pinned)."""
    return window.first_date(get_engine(settings.database_url), settings.window_rule, by="cli")


def cmd_show(args: argparse.Namespace) -> int:
    settings = args.settings
    first = first_partition(settings)
    latest = sessions.latest_completed_session()
    count = len(sessions.sessions_between(first, latest))
    rule = settings.window_rule
    kept = (f"pinned by {window.PARTITIONS_START_ENV}" if rule.pinned_start is not None
            else f"moves to the last {rule.sessions} sessions ({window.PARTITION_SESSIONS_ENV}) each session")
    print(f"date partitions: {first} .. {latest} ({count} sessions); {kept}")
    return 0


def cmd_move(args: argparse.Namespace) -> int:
    # Dagster and the definitions only now: `window show` stays light.
    from symbol_pipeline.defs.symbols.window import partitions_for
    from symbol_pipeline.runs.window import move_window  # Dagster too, for the same reason

    settings = args.settings
    to = None
    if args.to is not None:
        to = parse_date(args.to)
        if not sessions.is_session(to):
            raise CliError(f"--to {to} is not an NYSE trading session")
        if to > sessions.latest_completed_session():
            raise CliError(f"--to {to} is after the latest completed session")
    engine = get_engine(settings.database_url)
    with get_instance(settings.data_dir) as instance:
        report = move_window(instance, engine, settings.window_rule, partitions_for, to=to, by="cli window move")
    for line in report.lines():
        print(line)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("window", help="the date partitions: the sessions the UI and the runs cover")
    actions = parser.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="the stored first date partition and the rule that moves it")
    show.set_defaults(func=cmd_show)
    move = actions.add_parser(
        "move", help="move the window to the last N sessions (what partition_window_job does daily), or --to a date"
    )
    move.add_argument("--to", help="set the first date partition (an earlier one widens the window to recompute "
                                   "older sessions; the daily move narrows it again)")
    move.set_defaults(func=cmd_move)
