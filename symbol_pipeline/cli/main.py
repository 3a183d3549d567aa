"""The `symbol-pipeline` parser and the one place that turns errors into exit codes."""

from __future__ import annotations

import argparse
import sys
import warnings

from symbol_pipeline.cli import operations, portfolio, symbols
from symbol_pipeline.cli.errors import CliError, err
from symbol_pipeline.config import apply_dagster_event_settings, get_settings
from symbol_pipeline.lib.symbols import InvalidSymbolError
from symbol_pipeline.services.portfolio import ServiceError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symbol-pipeline",
        description="Factor betas per symbol as Dagster assets, aggregated per portfolio.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    symbols.register(sub)
    operations.register(sub)
    portfolio.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Dagster flags beta and preview APIs on every import; they say nothing to a CLI user.
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", message=".*(beta|preview|experimental).*")
    args = build_parser().parse_args(argv)
    apply_dagster_event_settings()
    try:
        # The entry point reads the settings once; commands take them from `args`.
        args.settings = get_settings()
        return args.func(args)
    except (CliError, InvalidSymbolError, ServiceError, ValueError, OSError) as exc:
        err(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
