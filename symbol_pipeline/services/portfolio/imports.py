"""Importing positions from CSV or JSON text: the CLI's and the HTTP API's one validation, all or nothing.

Parsing is bounded before any row is validated: at most `max_rows` rows (TooManyRowsError, the
CSV read no further), and whatever the parsers themselves refuse (a CSV field over the csv
module's limit, JSON nested past the recursion limit, an integer past Python's 4,300 digits;
a huge one within it fails the rules' bounds, naming the field) is a ValidationError naming it, never the parser's own exception. `parse_rows` takes the
raw bytes, so the API can run it in a worker process (api/parsing.py) and the CLI in its own.

Whatever the text holds is a ValidationError naming the line or the rule, never another exception:
a CSV field beyond the parser's limit (`_csv.Error`), JSON nested deeper than the parser recurses
(RecursionError), a number beyond float range. Every row then goes through `inputs.clean_position`,
the rules of the single-position endpoints.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy.engine import Engine

from symbol_pipeline.services.portfolio.book import add_positions
from symbol_pipeline.services.portfolio.errors import TooManyRowsError, ValidationError

CSV_HEADER = "symbol,quantity[,entry_price,entry_date,investment_class]"


def csv_rows(text: str, max_rows: int | None = None) -> list[dict[str, Any]]:
    """The rows of a CSV with header symbol,quantity[,entry_price,entry_date,investment_class].

    Cells lose surrounding spaces only: a tab or a control character is part of the value, and the
    rules refuse it rather than strip it."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        fieldnames = reader.fieldnames
        if not fieldnames or not {"symbol", "quantity"} <= {f.strip(" ") for f in fieldnames}:
            raise ValidationError("CSV needs a header with at least the columns symbol,quantity")
        rows = []
        for row in reader:
            if max_rows is not None and len(rows) >= max_rows:
                raise TooManyRowsError(max_rows)
            if None in row:
                raise ValidationError(f"CSV line {reader.line_num}: more fields than the header")
            rows.append({k.strip(" "): (v.strip(" ") if isinstance(v, str) else v) for k, v in row.items()
                         if v not in (None, "") or k.strip(" ") in ("symbol", "quantity")})
    except csv.Error as exc:  # a field over csv.field_size_limit() (128 KiB), a NUL byte, ...
        raise ValidationError(f"CSV line {reader.line_num + 1}: {exc}") from None
    return rows


def json_rows(text: str | bytes, max_rows: int | None = None) -> list[dict[str, Any]]:
    """The rows of a JSON list of positions, or of {"positions": [...]}."""
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ValidationError("not valid JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(f"not valid JSON: {exc}") from None
    if isinstance(doc, Mapping) and set(doc) == {"positions"}:
        doc = doc["positions"]
    if not isinstance(doc, list) or not all(isinstance(r, Mapping) for r in doc):
        raise ValidationError('JSON must be a list of positions or {"positions": [...]}, each an object')
    if max_rows is not None and len(doc) > max_rows:
        raise TooManyRowsError(max_rows)
    return [dict(r) for r in doc]


def parse_rows(kind: Literal["csv", "json"], body: bytes, max_rows: int | None = None) -> list[dict[str, Any]]:
    """The rows of an import's raw bytes: CSV (UTF-8, a BOM allowed) or JSON."""
    if kind == "json":
        return json_rows(body, max_rows)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("the CSV is not UTF-8 text") from None
    return csv_rows(text, max_rows)


def import_positions_csv(engine: Engine, portfolio_id: Any, text: str, owner_id: int | None = None,
                         requested_by: str = "import", max_rows: int | None = None) -> dict[str, Any]:
    """Add every row of a CSV with header symbol,quantity[,entry_price,entry_date,investment_class]."""
    return add_positions(engine, portfolio_id, csv_rows(text, max_rows), owner_id=owner_id, requested_by=requested_by)


def import_positions_json(engine: Engine, portfolio_id: Any, text: str | bytes, owner_id: int | None = None,
                          requested_by: str = "import", max_rows: int | None = None) -> dict[str, Any]:
    """Add every position of a JSON list (fields as in CSV, numbers as numbers or text)."""
    return add_positions(engine, portfolio_id, json_rows(text, max_rows), owner_id=owner_id,
                         requested_by=requested_by)
