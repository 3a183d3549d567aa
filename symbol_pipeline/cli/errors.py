"""The CLI's one error style: `error: <message>` on stderr, a non-zero exit, no traceback (cli/main.py
shows the traceback of an unexpected error with --verbose)."""

from __future__ import annotations

import sys


class CliError(Exception):
    """A user error: printed on stderr, exit status 1."""


def err(message: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays data)."""
    print(message, file=sys.stderr, flush=True)
