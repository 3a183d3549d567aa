"""Field types shared by the request bodies and query parameters: bounded finite numbers, clean
strings, dates that every layer below can represent, a bounded scenario list.

Validation happens here, at the edge, before any work: a body or query that fails it is a 422
naming the field and the rule, and nothing is written. The bounds (docs/api.md, "Bounds"):

* every number: finite (no NaN, no ±Infinity: Python's json parses them), an int or a float, and
  |x| ≤ MAX_NUMBER (1e13; a JSON integer beyond float range is refused, not overflowed);
* `Quantity`: 0 < |x| ≤ 1e12; `Price` and `Equity`: 0 < x ≤ 1e13;
* `CleanStr`: no control characters (C0, DEL, C1) and no unpaired surrogates (`"\\ud800"` in JSON);
* `AsOfDate` (an `as_of` or stress `date`): a calendar date from 1900-01-01 to today (the latest
  data on or before it is used); the portfolio's first date is checked by the service;
* `ScenarioNames`: de-duplicated, at most MAX_SCENARIOS names of at most 64 clean characters.

A date to *run* (a session inside the partitions, not after the latest completed one) needs the
settings and the calendar: `runs.requests.check_run_date` says why one is refused.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated

from pydantic import AfterValidator, Field, StrictFloat, StrictInt

MAX_NUMBER = 1e13
MAX_QUANTITY = 1e12
MAX_PRICE = 1e13
MAX_EQUITY = 1e13
MAX_SCENARIOS = 20
MAX_SCENARIO_NAME = 64
EARLIEST_DATE = dt.date(1900, 1, 1)

# C0 controls, DEL, C1 controls, and lone UTF-16 surrogates (which JSON's \uXXXX escapes can make).
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _finite(value: int | float, bound: float = MAX_NUMBER) -> float:
    # An int is compared as an int: float(10**400) would raise OverflowError (a 500) instead.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number (NaN and Infinity are not numbers)")
    if not -bound <= value <= bound:
        raise ValueError(f"must be within ±{bound:g}")
    return float(value)


def _quantity(value: int | float) -> float:
    value = _finite(value, MAX_QUANTITY)
    if value == 0:
        raise ValueError("quantity must not be zero (shorts are negative)")
    return value


def _positive(bound: float):
    def check(value: int | float) -> float:
        value = _finite(value, bound)
        if value <= 0:
            raise ValueError(f"must be greater than 0 and at most {bound:g}")
        return value

    return check


def clean_text(value: str) -> str:
    """`value` unless it holds a control character or an unpaired surrogate (ValueError naming it)."""
    found = _FORBIDDEN.search(value)
    if found:
        raise ValueError(f"must not contain control characters or unpaired surrogates "
                         f"(found U+{ord(found.group()):04X} at position {found.start()})")
    return value


def today() -> dt.date:
    """The latest calendar date anywhere: an as-of date up to it is never in the future for a user."""
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=14)).date()


def _as_of(value: dt.date) -> dt.date:
    if value < EARLIEST_DATE:
        raise ValueError(f"must be on or after {EARLIEST_DATE}")
    if value > today():
        raise ValueError(f"must not be after today ({today()}): the latest data on or before it is used")
    return value


def _scenarios(names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    unique = list(dict.fromkeys(clean_text(n) for n in names))
    if len(unique) > MAX_SCENARIOS:
        raise ValueError(f"at most {MAX_SCENARIOS} distinct scenarios per request, got {len(unique)}")
    return unique


def _bounds(low: float, high: float, *, exclusive_low: bool = False) -> dict[str, float]:
    return {"exclusiveMinimum" if exclusive_low else "minimum": low, "maximum": high}


FiniteNumber = Annotated[StrictInt | StrictFloat, AfterValidator(_finite),
                         Field(description=f"A finite number, |x| ≤ {MAX_NUMBER:g}",
                               json_schema_extra=_bounds(-MAX_NUMBER, MAX_NUMBER))]
# The name the request bodies have always imported: every number is finite and bounded.
Number = FiniteNumber
Quantity = Annotated[StrictInt | StrictFloat, AfterValidator(_quantity),
                     Field(description=f"Signed quantity, shorts negative: 0 < |x| ≤ {MAX_QUANTITY:g}",
                           json_schema_extra=_bounds(-MAX_QUANTITY, MAX_QUANTITY))]
Price = Annotated[StrictInt | StrictFloat, AfterValidator(_positive(MAX_PRICE)),
                  Field(description=f"A price in USD: 0 < x ≤ {MAX_PRICE:g}",
                        json_schema_extra=_bounds(0, MAX_PRICE, exclusive_low=True))]
Equity = Annotated[StrictInt | StrictFloat, AfterValidator(_positive(MAX_EQUITY)),
                   Field(description=f"Cash equity in USD: 0 < x ≤ {MAX_EQUITY:g}",
                         json_schema_extra=_bounds(0, MAX_EQUITY, exclusive_low=True))]
CleanStr = Annotated[str, AfterValidator(clean_text)]
AsOfDate = Annotated[dt.date, AfterValidator(_as_of)]
ScenarioName = Annotated[str, Field(min_length=1, max_length=MAX_SCENARIO_NAME)]
ScenarioNames = Annotated[list[ScenarioName] | None, AfterValidator(_scenarios)]
