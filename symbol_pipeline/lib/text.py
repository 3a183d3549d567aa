"""Text as the rules see it and as errors and terminals show it: which characters are refused, how an
input is quoted in a message (short), and how a stored string is printed (one line, escapes visible)."""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, the Unicode line and paragraph separators (some terminals and
# viewers break lines there) and lone UTF-16 surrogates (which JSON's \uXXXX escapes can make).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# An error message quotes at most this much of its input: a 60,000-character path is not echoed.
QUOTE_CHARS = 40


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """`repr(value)` cut to about `limit` characters, with … where it was cut."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "…"
    text = repr(value)
    return text if len(text) <= limit + 2 else text[:limit] + "…"


def first_control_character(value: str) -> str | None:
    """'U+XXXX at position N' for the first refused character of `value`, None when there is none."""
    found = CONTROL_CHARACTERS.search(value)
    return None if found is None else f"U+{ord(found.group()):04X} at position {found.start()}"


def printable(value: object) -> str:
    """`value` as one line for a terminal: refused characters (a newline, an escape) written as \\xNN
    or \\uXXXX, so that a stored name cannot forge a line or move the cursor."""
    text = "" if value is None else str(value)
    return CONTROL_CHARACTERS.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"),
                                  text)
