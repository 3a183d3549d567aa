"""The rules every input obeys, written once: the API's field types (`api/fields.py`), the services
(single positions, CSV and JSON imports, users) and the CLI's parsers all call these functions, so
that no way in accepts what another refuses.

Each check returns the clean value or raises RuleError whose message is the rule broken ("must be
within ±1e+12"); the caller names the field (pydantic puts it in `loc`, the services prefix it).

* numbers: an int or a float (a boolean is not a number), or text of ASCII digits (`"١٢٣"` is
  refused, though Python's float() reads it); finite; |x| ≤ MAX_NUMBER, an int compared as an int
  (float(10**400) would raise OverflowError);
* quantity 0 < |x| ≤ MAX_QUANTITY; price and equity 0 < x ≤ MAX_PRICE / MAX_EQUITY;
* text: no control character, line separator or unpaired surrogate (`lib/text.py`); names of
  users and portfolios 1 to MAX_USER_NAME / MAX_PORTFOLIO_NAME characters; a currency of
  SUPPORTED_CURRENCIES;
* dates: `YYYY-MM-DD` in ASCII digits (not a number of seconds: `as_of=0` is not 1970-01-01),
  from EARLIEST_DATE, the exchange calendar's first session (1995-01-03: before it no session,
  price or covariance can exist), to today (the latest calendar date anywhere on Earth);
* symbols: `lib/symbols.py`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from symbol_pipeline.lib.sessions import FIRST_SESSION
from symbol_pipeline.lib.text import first_control_character, quote

MAX_NUMBER = 1e13
MAX_QUANTITY = 1e12
MAX_PRICE = 1e13
MAX_EQUITY = 1e13
EARLIEST_DATE = FIRST_SESSION
# 60, not the column's 64: the onboarding queue records an API caller as `api:<name>` in 64 characters.
MAX_USER_NAME = 60
MAX_PORTFOLIO_NAME = 128
MAX_INVESTMENT_CLASS = 32
SUPPORTED_CURRENCIES = ("USD",)

_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_INVESTMENT_CLASS = re.compile(rf"[a-z0-9_-]{{1,{MAX_INVESTMENT_CLASS}}}", re.ASCII)


class RuleError(ValueError):
    """Input that breaks a rule; the message says which, the caller says which field."""


class SettingError(RuleError):
    """A setting (an environment variable, a price source's spec) that breaks its rule; the message
    names it. A user error like any other: the CLI prints it in one line."""


# --- numbers ----------------------------------------------------------------------------------


def number(value: Any, bound: float = MAX_NUMBER) -> float:
    """A finite number with |x| ≤ bound, from an int, a float or ASCII text."""
    if isinstance(value, bool):  # bool is an int subclass: True would be 1
        raise RuleError("must be a number, not a boolean")
    if isinstance(value, str):
        text = value.strip(" ")
        if not _NUMBER_TEXT.fullmatch(text):
            raise RuleError(f"must be a number written with ASCII digits, got {quote(value)}")
        value = float(text)  # a long digit string becomes inf, refused below
    elif not isinstance(value, (int, float)):
        raise RuleError(f"must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RuleError("must be a finite number (NaN and Infinity are not numbers)")
    if not -bound <= value <= bound:  # an int stays an int here: no OverflowError
        raise RuleError(f"must be within ±{bound:g}")
    return float(value)


def quantity(value: Any) -> float:
    """A signed quantity (shorts negative): 0 < |x| ≤ MAX_QUANTITY."""
    value = number(value, MAX_QUANTITY)
    if value == 0:
        raise RuleError("must not be zero (shorts are negative)")
    return value


def positive(value: Any, bound: float) -> float:
    """0 < x ≤ bound."""
    value = number(value, bound)
    if value <= 0:
        raise RuleError(f"must be greater than 0 and at most {bound:g}")
    return value


def price(value: Any) -> float:
    return positive(value, MAX_PRICE)


def equity(value: Any) -> float:
    return positive(value, MAX_EQUITY)


# --- text -------------------------------------------------------------------------------------


def clean_text(value: Any) -> str:
    """`value` unless it is not text or holds a refused character (lib/text.CONTROL_CHARACTERS)."""
    if not isinstance(value, str):
        raise RuleError(f"must be text, got {type(value).__name__}")
    found = first_control_character(value)
    if found is not None:
        raise RuleError(f"must not contain control characters or unpaired surrogates (found {found})")
    return value


def name(value: Any, limit: int) -> str:
    """Clean text of 1 to `limit` characters, surrounding spaces removed."""
    text = clean_text(value).strip(" ")
    if not 1 <= len(text) <= limit:
        raise RuleError(f"must be 1 to {limit} characters")
    return text


def user_name(value: Any) -> str:
    """A user's name: it is printed in `symbols queue` and in the admin API's `requested_by`, so a
    newline or an escape sequence would forge lines there."""
    return name(value, MAX_USER_NAME)


def portfolio_name(value: Any) -> str:
    """A portfolio's name: clean text of 1 to MAX_PORTFOLIO_NAME characters, surrounding spaces removed."""
    return name(value, MAX_PORTFOLIO_NAME)


def currency(value: Any) -> str:
    """A portfolio's currency: one of SUPPORTED_CURRENCIES."""
    text = clean_text(value)
    if text not in SUPPORTED_CURRENCIES:
        raise RuleError(f"{quote(text)} is not supported; only {', '.join(SUPPORTED_CURRENCIES)}")
    return text


def investment_class(value: Any) -> str:
    """Up to 32 ASCII letters, digits, _ or -, lower-cased."""
    text = clean_text(value)
    if not text.isascii() or not _INVESTMENT_CLASS.fullmatch(text.lower()):
        raise RuleError(f"must be 1 to {MAX_INVESTMENT_CLASS} ASCII letters, digits, _ or -")
    return text.lower()


# --- dates ------------------------------------------------------------------------------------


def today() -> dt.date:
    """The latest calendar date anywhere: a date up to it is never in the future for a user."""
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=14)).date()


def parse_date(value: Any) -> dt.date:
    """A date from a date (a datetime's date) or from `YYYY-MM-DD` text; anything else is refused."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value.strip(" ")):
        try:
            return dt.date.fromisoformat(value.strip(" "))
        except ValueError:
            raise RuleError(f"must be a calendar date, got {quote(value)}") from None
    raise RuleError(f"must be a date in YYYY-MM-DD form, got {quote(value)}")


def date_in_range(day: dt.date) -> dt.date:
    """`day` when it lies in [EARLIEST_DATE, today()]."""
    if day < EARLIEST_DATE:
        raise RuleError(f"must be on or after {EARLIEST_DATE}, the exchange calendar's first session "
                        f"(no data exists before it)")
    if day > today():
        raise RuleError(f"must not be after today ({today()}): the latest data on or before it is used")
    return day


def date(value: Any) -> dt.date:
    """parse_date, then date_in_range."""
    return date_in_range(parse_date(value))
