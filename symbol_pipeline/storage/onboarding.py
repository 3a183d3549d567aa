"""Claiming rows of the onboarding queue for a sensor tick (or the CLI's `onboard`).

Belongs beside storage/universe.py (which owns the queue's other functions); kept apart only
while that file is being edited by someone else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from symbol_pipeline.storage.dialect import is_postgres
from symbol_pipeline.storage.lifecycle import record_failures
from symbol_pipeline.storage.schema import symbol_onboarding_queue as queue
from symbol_pipeline.storage.universe import (
    DEFAULT_RETRY_ATTEMPTS,
    DEFAULT_RETRY_DELAY,
    QUEUE_FAILED,
    QUEUE_PENDING,
    QUEUE_PROCESSING,
    STATUS_PENDING,
    known_symbols,
)


@dataclass(frozen=True)
class QueueRow:
    id: int
    symbol: str
    priority: int
    requested_by: str


def claim_batch(engine: Engine, limit: int, *, reclaim_after_id: int | None = None) -> list[QueueRow]:
    """Mark up to `limit` queued rows `processing` and return them, highest priority first.

    Within a priority the oldest goes first. Rows already `processing` with an id above
    `reclaim_after_id` are taken again: they were claimed by a sensor tick whose result (and
    cursor) Dagster never stored, so no run was requested for them. Two claimers never take the
    same pending row: PostgreSQL skips rows another transaction holds, and each update is
    conditional on the row still being in the state it was read in.
    """
    c = queue.c
    wanted = c.status == QUEUE_PENDING
    if reclaim_after_id is not None:
        wanted = sa.or_(wanted, sa.and_(c.status == QUEUE_PROCESSING, c.id > reclaim_after_id))
    query = sa.select(c.id, c.symbol, c.priority, c.requested_by, c.status).where(wanted)
    query = query.order_by(c.priority.desc(), c.created_at.asc(), c.id.asc()).limit(limit)
    now = dt.datetime.now(dt.timezone.utc)
    claimed: list[QueueRow] = []
    with engine.begin() as conn:
        if is_postgres(conn):
            query = query.with_for_update(skip_locked=True)
        for row in conn.execute(query).all():
            updated = conn.execute(
                queue.update()
                .where(c.id == row.id, c.status == row.status)
                .values(status=QUEUE_PROCESSING, started_at=now, error_message=None)
            ).rowcount
            if updated:
                claimed.append(QueueRow(row.id, row.symbol, row.priority, row.requested_by))
    return claimed


def fail_processing(engine: Engine, ids: list[int], reason: str, *, attempts: int = DEFAULT_RETRY_ATTEMPTS,
                    first_delay: dt.timedelta = DEFAULT_RETRY_DELAY) -> int:
    """Rows of a failed onboarding run: `failed` with the reason, their pending symbols `error`
    with an automatic retry scheduled (lifecycle.record_failures).

    Only rows still `processing` change: a row the run had already settled keeps its outcome.
    """
    if not ids:
        return 0
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(queue.c.id, queue.c.symbol).where(queue.c.id.in_(ids), queue.c.status == QUEUE_PROCESSING)
        ).all()
        for row in rows:
            conn.execute(
                queue.update().where(queue.c.id == row.id)
                .values(status=QUEUE_FAILED, error_message=reason, completed_at=now)
            )
        statuses = known_symbols(conn, [row.symbol for row in rows])
        pending = {row.symbol: reason for row in rows if statuses.get(row.symbol) == STATUS_PENDING}
        record_failures(conn, pending, now=now, attempts=attempts, first_delay=first_delay)
    return len(rows)


def queue_rows(engine: Engine, symbols: list[str] | None = None) -> list[dict]:
    """The queue's rows (for status pages and tests), oldest first."""
    query = sa.select(queue).order_by(queue.c.id)
    if symbols:
        query = query.where(queue.c.symbol.in_(symbols))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
