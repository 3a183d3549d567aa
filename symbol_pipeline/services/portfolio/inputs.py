"""What the portfolio service accepts, whichever way it came in (a single-position endpoint, a CSV or
JSON import, the CLI): every value goes through the one set of rules of `lib/rules.py`, and a
broken rule is a ValidationError naming the row, the field and the rule. The API's pydantic types
are built from the same functions, so the two can only agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from symbol_pipeline.lib import rules
from symbol_pipeline.lib.symbols import InvalidSymbolError, validate_symbol
from symbol_pipeline.lib.text import quote
from symbol_pipeline.services.portfolio.errors import DateOutOfRangeError, ValidationError

POSITION_FIELDS = frozenset({"symbol", "quantity", "entry_price", "entry_date", "investment_class"})

T = TypeVar("T")


def checked(field: str, rule: Callable[[Any], T], value: Any) -> T:
    """rule(value), a broken rule a ValidationError that starts with the field's name."""
    try:
        return rule(value)
    except (rules.RuleError, InvalidSymbolError) as exc:
        message = str(exc)
        raise ValidationError(message if message.startswith(field) else f"{field} {message}") from None


def finite(value: Any, what: str, bound: float = rules.MAX_NUMBER) -> float:
    """A number within ±bound (rules.number) from a number or ASCII text."""
    return checked(what, lambda v: rules.number(v, bound), value)


def today() -> dt.date:
    """The service's today: the default of every effective date."""
    return dt.date.today()


def check_date(day: dt.date | None, what: str = "as_of") -> dt.date:
    """`day`, or today when None; a date after today or before rules.EARLIEST_DATE (the exchange
    calendar's first session) is a DateOutOfRangeError naming it."""
    now = today()
    if day is None:
        return now
    if day > now:
        raise DateOutOfRangeError(f"{what} {day.isoformat()} is in the future (today is {now.isoformat()})")
    if day < rules.EARLIEST_DATE:
        raise DateOutOfRangeError(f"{what} {day.isoformat()} is before {rules.EARLIEST_DATE}, the exchange calendar's "
                                  f"first session: no data exists before it")
    return day


def optional_date(value: Any, what: str) -> dt.date | None:
    """None for a missing value, else a `YYYY-MM-DD` date (rules.parse_date)."""
    if value is None or value == "":
        return None
    return checked(what, rules.parse_date, value)


def effective(value: Any, what: str = "effective_date") -> dt.date:
    """An effective date from input: today when absent, within [EARLIEST_DATE, today]."""
    return check_date(optional_date(value, what), what)


def symbol(value: Any) -> str:
    return checked("symbol", validate_symbol, value)


def clean_position(raw: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """A position row (symbol, quantity, entry_price, entry_date, investment_class) checked and
    normalised, or a ValidationError prefixed with `where` (e.g. "row 3")."""
    prefix = f"{where}: " if where else ""
    try:
        unknown = set(raw) - POSITION_FIELDS
        if unknown:
            raise ValidationError(f"unknown fields [{', '.join(quote(k) for k in sorted(map(str, unknown))[:10])}]")
        if "symbol" not in raw or "quantity" not in raw:
            raise ValidationError("symbol and quantity are required")
        price = raw.get("entry_price")
        return {
            "symbol": symbol(raw["symbol"]),
            "quantity": checked("quantity", rules.quantity, raw["quantity"]),
            "entry_price": None if price is None or price == "" else checked("entry_price", rules.price, price),
            "entry_date": effective(raw.get("entry_date"), "entry_date"),
            "investment_class": checked("investment_class", rules.investment_class,
                                        raw.get("investment_class") or "equity"),
        }
    except ValidationError as exc:
        raise ValidationError(f"{prefix}{exc}") from None
