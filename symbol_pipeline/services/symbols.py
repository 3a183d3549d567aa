"""Symbols for the API and operators: one symbol's status and factor rows; the onboarding queue,
retries and rejections; which symbols a run computes; which held symbols are unavailable."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine

from symbol_pipeline.storage import latest, lifecycle, universe
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
        "reason": public_reason(status.error_message) if status.status in ("error", "delisted") else None,
        "queue_status": status.queue_status,
        "latest_factors_date": (latest_date or status.last_factor_date),
        "stale": status.stale,
    }


def symbol_factors(engine: Engine, symbol: str, date: dt.date | None = None) -> tuple[dt.date | None, list[dict]]:
    """(date, rows): the symbol's factor rows on `date`, or on its latest date with rows, in factor order."""
    with engine.connect() as conn:
        day, rows = latest.symbol_factor_rows(conn, symbol, date)
    return day, [dict(r._mapping) for r in rows]


# --- operators: the queue, retries, rejections --------------------------------------------------

QUEUE_VIEW_STATUSES = {
    "queued": (universe.STATUS_PENDING,), "error": (universe.STATUS_ERROR,), "delisted": (universe.STATUS_DELISTED,),
}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def symbol_queue(engine: Engine, which: Sequence[str] = ("queued", "error")) -> list[dict[str, Any]]:
    """Queued (`pending`), `error` and/or `delisted` symbols with reason, attempts, next retry and
    who asked for them, highest queue priority and oldest request first."""
    statuses = [s for name in which for s in QUEUE_VIEW_STATUSES[name]]
    with engine.connect() as conn:
        rows = lifecycle.symbol_rows(conn, statuses)
    return [{k: _iso(v) for k, v in row.items()} for row in rows]


def retry_symbols(engine: Engine, symbols: Sequence[str], requested_by: str) -> dict[str, list[str]]:
    """Queue `error` (or `delisted`) symbols again at once, at operator priority, with a fresh count
    of attempts: {"requeued": [...], "not_retried": [...]} (unknown, active or already queued)."""
    with engine.begin() as conn:
        requeued = lifecycle.requeue(conn, symbols, requested_by=requested_by, priority=universe.OPERATOR_PRIORITY,
                                     reset_attempts=True, statuses=(universe.STATUS_ERROR, universe.STATUS_DELISTED))
    return {"requeued": requeued, "not_retried": [s for s in symbols if s not in requeued]}


def reject_symbols(engine: Engine, symbols: Sequence[str], reason: str) -> dict[str, list[str]]:
    """Queued or `error` symbols are refused for good (status `error`, no automatic retry):
    {"rejected": [...], "not_rejected": [...]} (unknown, active or delisted)."""
    with engine.begin() as conn:
        rejected = lifecycle.reject(conn, symbols, f"rejected by an operator: {reason}")
    return {"rejected": rejected, "not_rejected": [s for s in symbols if s not in rejected]}


# --- what a run computes, and what portfolios are told -------------------------------------------


@dataclass(frozen=True)
class RunScope:
    """A run's symbols: `regress` get prices and betas, `fetch_only` (delisted since before the
    run's dates) only prices, so that they can return; `skipped` (`error`) nothing."""

    regress: list[str]
    fetch_only: list[str]
    skipped: list[str]
    delisted: list[str]
    reactivated: list[str]


def run_scope(
    engine: Engine, symbols: Sequence[str], dates: Sequence[dt.date], *,
    delisted_after_sessions: int = universe.DEFAULT_DELISTED_AFTER,
) -> RunScope:
    """Update which of `symbols` are delisted (lifecycle.update_listing), then split them for a run."""
    with engine.begin() as conn:
        delisted, back = lifecycle.update_listing(conn, symbols, after_sessions=delisted_after_sessions)
        statuses = universe.known_symbols(conn, symbols)
        last = lifecycle.last_price_dates(conn, [s for s in symbols if statuses.get(s) == universe.STATUS_DELISTED])
    first = min(dates) if dates else None
    # A delisted symbol still has betas to compute on dates up to its last price (a backfill).
    fetch_only = sorted(s for s, day in last.items() if first is None or day is None or day < first)
    skipped = sorted(s for s in symbols if statuses.get(s) == universe.STATUS_ERROR)
    out = set(fetch_only) | set(skipped)
    return RunScope([s for s in symbols if s not in out], fetch_only, skipped, delisted, back)


def unavailable_symbols(engine_or_conn: Engine | Connection, symbols: Sequence[str]) -> dict[str, str]:
    """symbol -> `error` | `delisted` for held symbols the pipeline no longer computes."""
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            return lifecycle.unavailable_among(conn, symbols)
    return lifecycle.unavailable_among(engine_or_conn, symbols)


def with_unavailable(texts: dict[str, str], held: Mapping[str, Sequence[str]], unavailable: Mapping[str, str]) -> None:
    """Add `"unavailable_symbols": {symbol: status}` (empty when none) to each exposures document
    in `texts` (JSON objects, rewritten in place); `held`: portfolio id -> its symbols."""
    for pid, text in texts.items():
        named = {s: unavailable[s] for s in sorted(set(held.get(pid, ()))) if s in unavailable}
        texts[pid] = text[:-1] + ',"unavailable_symbols":' + json.dumps(named, separators=(",", ":")) + "}"
