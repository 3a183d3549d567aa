"""Field types shared by the request bodies and query parameters, built from the one set of rules in
`lib/rules.py` (which the services, the imports and the CLI call too): bounded finite numbers,
clean strings, symbols, dates that every layer below can represent, a bounded scenario list.

Validation happens here, at the edge, before any work: a body or query that fails it is a 422
naming the field and the rule, and nothing is written. The bounds (docs/api.md "Bounds", rules.py):

* every number: finite (no NaN, no ±Infinity: Python's json parses them), an int or a float (not a
  boolean), and |x| ≤ MAX_NUMBER (1e13; a JSON integer beyond float range is refused, not overflowed);
* `Quantity`: 0 < |x| ≤ 1e12; `Price` and `Equity`: 0 < x ≤ 1e13;
* `CleanStr`: no control characters (C0, DEL, C1, U+2028/U+2029) and no unpaired surrogates;
* `PortfolioName`: clean, 1 to 128 characters once surrounding spaces are removed; `Currency`: USD;
* `Symbol`: lib/symbols.validate_symbol (ASCII only, upper-cased, never folded);
* `AsOfDate` (every date a user sends): `YYYY-MM-DD` from 1995-01-03, the exchange calendar's first
  session, to today (the latest data on or before it is used); the portfolio's first date is
  checked by the service;
* `ScenarioNames`: de-duplicated, at most MAX_SCENARIOS names of at most 64 clean characters.

A date to *run* (a session inside the partitions, not after the latest completed one) needs the
settings and the calendar: `runs.requests.check_run_date` says why one is refused.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StrictFloat, StrictInt, StrictStr

from symbol_pipeline.lib import rules
from symbol_pipeline.lib.rules import EARLIEST_DATE, MAX_EQUITY, MAX_NUMBER, MAX_PRICE, MAX_QUANTITY, today
from symbol_pipeline.lib.symbols import MAX_SYMBOL_LENGTH, validate_symbol

__all__ = ["EARLIEST_DATE", "MAX_EQUITY", "MAX_NUMBER", "MAX_PRICE", "MAX_QUANTITY", "today", "clean_text"]

MAX_SCENARIOS = 20
MAX_SCENARIO_NAME = 64
clean_text = rules.clean_text


def _scenarios(names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    unique = list(dict.fromkeys(clean_text(n) for n in names))
    if len(unique) > MAX_SCENARIOS:
        raise ValueError(f"at most {MAX_SCENARIOS} distinct scenarios per request, got {len(unique)}")
    return unique


def _bounds(low: float, high: float, *, exclusive_low: bool = False) -> dict[str, float]:
    return {"exclusiveMinimum" if exclusive_low else "minimum": low, "maximum": high}


# StrictInt | StrictFloat refuses booleans and text before the rule sees them: a JSON body's number
# is a number. The rule itself is the one the imports apply to a CSV cell.
FiniteNumber = Annotated[StrictInt | StrictFloat, AfterValidator(rules.number),
                         Field(description=f"A finite number, |x| ≤ {MAX_NUMBER:g}",
                               json_schema_extra=_bounds(-MAX_NUMBER, MAX_NUMBER))]
# The name the request bodies have always imported: every number is finite and bounded.
Number = FiniteNumber
Quantity = Annotated[StrictInt | StrictFloat, AfterValidator(rules.quantity),
                     Field(description=f"Signed quantity, shorts negative: 0 < |x| ≤ {MAX_QUANTITY:g}",
                           json_schema_extra=_bounds(-MAX_QUANTITY, MAX_QUANTITY))]
Price = Annotated[StrictInt | StrictFloat, AfterValidator(rules.price),
                  Field(description=f"A price in USD: 0 < x ≤ {MAX_PRICE:g}",
                        json_schema_extra=_bounds(0, MAX_PRICE, exclusive_low=True))]
Equity = Annotated[StrictInt | StrictFloat, AfterValidator(rules.equity),
                   Field(description=f"Cash equity in USD: 0 < x ≤ {MAX_EQUITY:g}",
                         json_schema_extra=_bounds(0, MAX_EQUITY, exclusive_low=True))]
# The pattern documents the rule (and steers generated test bodies); the validator enforces it.
CLEAN_TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
CleanStr = Annotated[str, AfterValidator(rules.clean_text), Field(json_schema_extra={"pattern": CLEAN_TEXT_PATTERN})]
Symbol = Annotated[StrictStr, Field(min_length=1, max_length=2 * MAX_SYMBOL_LENGTH,
                                    description="Ticker: ASCII letters, digits and . - ^ =, at most 20 characters, "
                                                "starting with a letter, a digit or ^"),
                   AfterValidator(validate_symbol)]
# BeforeValidator: pydantic alone reads 0 or "0" as 1970-01-01 (seconds since the epoch). The
# pattern says what it can of the range (years 1995 to 2099); the validator holds the exact one.
DATE_PATTERN = r"^(199[5-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
AsOfDate = Annotated[dt.date, BeforeValidator(rules.parse_date), AfterValidator(rules.date_in_range),
                     Field(description=f"YYYY-MM-DD, from {EARLIEST_DATE} (the exchange calendar's first session) "
                                       "to today", json_schema_extra={"pattern": DATE_PATTERN})]
# The length bounds document the rule in the schema (and refuse a huge string before it is read);
# rules.portfolio_name and rules.currency hold it, for the service and the CLI too.
PortfolioName = Annotated[str, Field(min_length=1, max_length=rules.MAX_PORTFOLIO_NAME,
                                     json_schema_extra={"pattern": CLEAN_TEXT_PATTERN}),
                          AfterValidator(rules.portfolio_name)]
Currency = Annotated[str, Field(max_length=16, description="Only USD is supported",
                                json_schema_extra={"enum": list(rules.SUPPORTED_CURRENCIES),
                                                   "pattern": CLEAN_TEXT_PATTERN}),
                     AfterValidator(rules.currency)]
InvestmentClass = Annotated[str, AfterValidator(rules.investment_class),
                            Field(description="1 to 32 ASCII letters, digits, _ or - (lower-cased)",
                                  json_schema_extra={"pattern": f"^[A-Za-z0-9_-]{{1,{rules.MAX_INVESTMENT_CLASS}}}$"})]
ScenarioName = Annotated[str, Field(min_length=1, max_length=MAX_SCENARIO_NAME)]
ScenarioNames = Annotated[list[ScenarioName] | None, AfterValidator(_scenarios)]
