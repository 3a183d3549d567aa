"""What the OpenAPI schema says beyond the route signatures: the import body, described row by row with
the bounds of `lib/rules.py`, and the links between operations (the id a creation answers is the
path parameter of what follows).

The links are documentation for clients (Swagger UI shows them under each response) and what
schemathesis's stateful tests follow: create a portfolio, import into it, patch and close the
positions imported, delete the portfolio (`symbol_pipeline_tests/api/test_schema_fuzz.py`).
"""

from __future__ import annotations

from typing import Any

from symbol_pipeline.api.fields import DATE_PATTERN
from symbol_pipeline.lib.rules import MAX_INVESTMENT_CLASS, MAX_PRICE, MAX_QUANTITY
from symbol_pipeline.lib.symbols import MAX_SYMBOL_LENGTH

# The rules' patterns (lib/symbols, lib/rules.number) as JSON Schema writes them: anchored.
SYMBOL_PATTERN = r"^ *[A-Za-z0-9^][A-Za-z0-9.^=-]* *$"
NUMBER_TEXT_PATTERN = r"^ *[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)? *$"

# An import row: the fields of POST /api/v1/positions but the portfolio (in the path); numbers may
# also be text, as in a CSV.
IMPORT_ROW: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["symbol", "quantity"],
    "properties": {
        "symbol": {"type": "string", "minLength": 1, "maxLength": MAX_SYMBOL_LENGTH, "pattern": SYMBOL_PATTERN,
                   "description": "ASCII letters, digits and . - ^ =, starting with a letter, a digit or ^, "
                                  "at least one letter or digit; lower case is upper-cased"},
        "quantity": {"anyOf": [{"type": "number", "minimum": -MAX_QUANTITY, "maximum": MAX_QUANTITY},
                               {"type": "string", "pattern": NUMBER_TEXT_PATTERN}],
                     "description": f"Signed, not zero, |x| ≤ {MAX_QUANTITY:g}; a number or ASCII digits"},
        "entry_price": {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": MAX_PRICE},
                                  {"type": "string", "pattern": NUMBER_TEXT_PATTERN}, {"type": "null"}]},
        "entry_date": {"anyOf": [{"type": "string", "format": "date", "pattern": DATE_PATTERN}, {"type": "null"}],
                       "description": "YYYY-MM-DD from 1995-01-03 to today (default today)"},
        "investment_class": {"type": "string", "pattern": f"^[A-Za-z0-9_-]{{1,{MAX_INVESTMENT_CLASS}}}$"},
    },
}

IMPORT_BODY: dict[str, Any] = {"required": True, "content": {
    "text/csv": {"schema": {"type": "string", "description": "Header symbol,quantity[,entry_price,entry_date,"
                                                             "investment_class], one position per line"},
                 "example": "symbol,quantity,entry_price,entry_date\nAAPL,1000,190.5,2024-06-03\nMSFT,-200,,\n"},
    "application/json": {"schema": {"type": "array", "minItems": 1, "items": IMPORT_ROW}, "example": [
        {"symbol": "AAPL", "quantity": 1000, "entry_price": 190.5, "entry_date": "2024-06-03"},
        {"symbol": "MSFT", "quantity": -200}]},
}}


def _operation(path: str, method: str) -> str:
    """A JSON pointer to an operation (operationRef): stable where FastAPI's generated ids are not."""
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def _link(path: str, method: str, parameter: str, expression: str, description: str) -> dict[str, Any]:
    return {"operationRef": _operation(path, method), "parameters": {parameter: expression},
            "description": description}


_PORTFOLIO = "/api/v1/portfolios/{portfolio_id}"
_POSITION = "/api/v1/positions/{position_id}"


def portfolio_links(expression: str) -> dict[str, Any]:
    """What a response naming a portfolio's id (at `expression`) leads to."""
    return {
        "GetPortfolio": _link(_PORTFOLIO, "get", "portfolio_id", expression, "The portfolio and its equity history"),
        "ImportPositions": _link(_PORTFOLIO + "/positions/import", "post", "portfolio_id", expression,
                                 "Add positions to it"),
        "ListPositions": _link(_PORTFOLIO + "/positions", "get", "portfolio_id", expression, "Its open positions"),
        "SetEquity": _link(_PORTFOLIO + "/equity", "post", "portfolio_id", expression, "Record its equity"),
        "FactorExposures": _link("/api/v1/analytics/portfolio/{portfolio_id}/factor-exposures", "get",
                                 "portfolio_id", expression, "Its factor exposures"),
        "ExposureHistory": _link("/api/v1/analytics/portfolio/{portfolio_id}/factor-exposures/history", "get",
                                 "portfolio_id", expression, "Its exposures on every session of a range"),
        "DeletePortfolio": _link(_PORTFOLIO, "delete", "portfolio_id", expression, "Delete it with its history"),
    }


def position_links(expression: str) -> dict[str, Any]:
    """What a response naming a position's id (at `expression`) leads to."""
    return {
        "GetPosition": _link(_POSITION, "get", "position_id", expression, "The position and its quantity history"),
        "ChangePosition": _link(_POSITION, "patch", "position_id", expression, "A new quantity from a date on"),
        "ClosePosition": _link(_POSITION + "/close", "post", "position_id", expression, "Close it"),
    }
