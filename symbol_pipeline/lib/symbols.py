"""Ticker validation: the one rule every entry point applies (the API, the CLI, imports, sources).

A symbol is 1 to 20 ASCII characters: letters, digits and . - ^ =, the first a letter, a digit or
`^` (an index such as ^IRX), at least one letter or digit. ASCII lower case is upper-cased; any other
character is refused, never folded (Unicode upper-casing turns `ſpy` into SPY and `ß` into SS) nor
stripped (a control character inside a ticker is a mistake, not padding). `=CMD` (a spreadsheet
formula), `^` and `....` are refused: they name nothing a price source could fetch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from symbol_pipeline.lib.text import first_control_character, quote

MAX_SYMBOL_LENGTH = 20
# re.ASCII: without it [A-Z] is still ASCII, but the rule should not depend on that subtlety.
_SYMBOL_RE = re.compile(r"[A-Z0-9^][A-Z0-9.\-^=]*", re.ASCII)


class InvalidSymbolError(ValueError):
    """A ticker that cannot be a symbol (and could break Dagster partition keys)."""


def validate_symbol(raw: str) -> str:
    """Return the upper-cased ticker, or raise InvalidSymbolError saying which rule it breaks."""
    if not isinstance(raw, str):
        raise InvalidSymbolError(f"symbol must be a string, got {type(raw).__name__}")
    text = raw.strip(" ")  # spaces only: a CSV cell's padding; a tab or newline is refused below
    if not text:
        raise InvalidSymbolError("symbol is empty")
    control = first_control_character(text)
    if control is not None:
        raise InvalidSymbolError(f"symbol {quote(raw)} holds a control character ({control})")
    if not text.isascii():
        where = next(i for i, ch in enumerate(text) if not ch.isascii())
        raise InvalidSymbolError(f"symbol {quote(raw)} holds a non-ASCII character (U+{ord(text[where]):04X} at "
                                 f"position {where}); tickers are ASCII letters, digits and . - ^ =")
    if len(text) > MAX_SYMBOL_LENGTH:
        raise InvalidSymbolError(f"symbol {quote(raw)} is longer than {MAX_SYMBOL_LENGTH} characters")
    symbol = text.upper()  # ASCII by now: upper() cannot fold anything into a different ticker
    if not _SYMBOL_RE.fullmatch(symbol):
        raise InvalidSymbolError(
            f"symbol {quote(raw)} may only hold letters, digits and . - ^ =, starting with a letter, a digit "
            f"or ^ (e.g. BRK-B, ^IRX, CL=F)"
        )
    if not any(ch.isalnum() for ch in symbol):
        raise InvalidSymbolError(f"symbol {quote(raw)} needs at least one letter or digit")
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
