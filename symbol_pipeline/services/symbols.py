"""Reads of one symbol for the API: its status in the universe and its stored factor rows."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy.engine import Engine

from symbol_pipeline.storage import latest
from symbol_pipeline.storage.universe import symbol_status

# An absolute POSIX or Windows path (two segments or more) inside a message: `/srv/prices/X.csv`.
_PATH = re.compile(r"""(?<![\w.:/])(?:[A-Za-z]:)?[/\\](?:[^\s'"/\\,;:]+[/\\])+([^\s'"/\\,;:]*)""")


def public_reason(reason: str | None) -> str | None:
    """A status reason as users may see it: any server path reduced to its file name."""
    return _PATH.sub(lambda m: m.group(1) or "<path>", reason) if reason else reason


def symbol_status_document(engine: Engine, symbol: str) -> dict[str, Any] | None:
    """`ready` (active in the universe) | `pending` | `error` with its reason | `delisted`, and the
    latest factors date; None when the universe does not know the symbol."""
    with engine.connect() as conn:
        status = symbol_status(conn, symbol)
        if status is None:
            return None
        latest_date = latest.latest_factor_date(conn, symbol)
    return {
        "symbol": symbol,
        "status": "ready" if status.status == "active" else status.status,
        "reason": public_reason(status.error_message) if status.status == "error" else None,
        "queue_status": status.queue_status,
        "latest_factors_date": (latest_date or status.last_factor_date),
        "stale": status.stale,
    }


def symbol_factors(engine: Engine, symbol: str, date: dt.date | None = None) -> tuple[dt.date | None, list[dict]]:
    """(date, rows): the symbol's factor rows on `date`, or on its latest date with rows, in factor order."""
    with engine.connect() as conn:
        day, rows = latest.symbol_factor_rows(conn, symbol, date)
    return day, [dict(r._mapping) for r in rows]
