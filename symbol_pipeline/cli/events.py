"""`symbol-pipeline events prune`: bound Dagster's event log without losing a partition's status."""

from __future__ import annotations

import argparse

from symbol_pipeline.cli.errors import CliError
from symbol_pipeline.runs.instance import get_instance
from symbol_pipeline.runs.retention import RetentionUnsupportedError, prune_instance_events


def cmd_prune(args: argparse.Namespace) -> int:
    if args.older_than < 1:
        raise CliError(f"--older-than must be at least 1 day, not {args.older_than}")
    with get_instance(args.settings.data_dir) as instance:
        try:
            removed = prune_instance_events(instance, args.older_than)
        except RetentionUnsupportedError as exc:
            raise CliError(str(exc)) from None
    print(", ".join(f"{name.replace('_', ' ')}: {count:,}" for name, count in removed.items()))
    return 0


def register(subparsers) -> None:
    events = subparsers.add_parser("events", help="Dagster's event log")
    actions = events.add_subparsers(dest="action", required=True)
    prune = actions.add_parser(
        "prune", help="delete superseded materialisations and old runs' step events; every partition keeps its status"
    )
    prune.add_argument("--older-than", type=float, default=30, help="days (default 30)")
    prune.set_defaults(func=cmd_prune)
