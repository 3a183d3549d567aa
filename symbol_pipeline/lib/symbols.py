"""Ticker validation: the one rule every entry point applies."""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_SYMBOL_LENGTH = 20
_SYMBOL_RE = re.compile(r"^[A-Z0-9.\-^=]{1,20}$")


class InvalidSymbolError(ValueError):
    """A ticker that cannot be a symbol (and could break Dagster partition keys)."""


def validate_symbol(raw: str) -> str:
    """Return the upper-cased ticker, or raise InvalidSymbolError saying what is wrong."""
    if not isinstance(raw, str):
        raise InvalidSymbolError(f"symbol must be a string, got {type(raw).__name__}")
    symbol = raw.strip().upper()
    if not symbol:
        raise InvalidSymbolError("symbol is empty")
    if len(symbol) > MAX_SYMBOL_LENGTH:
        raise InvalidSymbolError(f"symbol {raw!r} is longer than {MAX_SYMBOL_LENGTH} characters")
    if not _SYMBOL_RE.match(symbol):
        raise InvalidSymbolError(
            f"symbol {raw!r} may only hold letters, digits and . - ^ = (e.g. BRK-B, ^IRX)"
        )
    return symbol


def validate_symbols(raw: Iterable[str]) -> list[str]:
    """Validate, upper-case and de-duplicate, keeping the first-seen order."""
    seen: dict[str, None] = {}
    for item in raw:
        seen.setdefault(validate_symbol(item), None)
    return list(seen)


def parse_symbol_list(text: str) -> list[str]:
    """Parse a comma-separated CLI argument such as 'AAPL,brk-b'."""
    return validate_symbols(part for part in text.split(",") if part.strip())


def contiguous_blocks(symbols: Iterable[str], order: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """(first, last) pairs of runs of `symbols` that are adjacent in `order`.

    A partition range covers every key between its ends, so a subset of symbols needs one
    range per block of neighbours in the dynamic partition's order.
    """
    wanted = set(symbols)
    blocks: list[tuple[str, str]] = []
    start: str | None = None
    previous: str | None = None
    for key in order:
        if key in wanted:
            start = start or key
            previous = key
        elif start is not None:
            blocks.append((start, previous))
            start = None
    if start is not None:
        blocks.append((start, previous))
    return blocks
