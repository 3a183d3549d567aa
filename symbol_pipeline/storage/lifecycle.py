"""A symbol's status over time: failed fetches retried with backoff, operators' retries and
rejections, `delisted` after sessions fetched without a price, and back.

    pending ──betas or prices──► active ◄──a price again── delisted
       │  ▲                         └──N sessions without a price──┘
  no prices  due retry / `symbols retry`
       ▼  │
      error ──attempts exhausted, or rejected──► error (no next retry)

A new listing with too little history is `active`: its rows say `insufficient_data` until the
history accrues. Kept apart from universe.py, which holds the universe's and queue's basics.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.lib.gaps import HOLE, NO_PRICE
from symbol_pipeline.storage.schema import symbol_onboarding_queue as queue
from symbol_pipeline.storage.schema import symbol_session_gaps as gaps_table
from symbol_pipeline.storage.schema import symbol_universe as universe
from symbol_pipeline.storage.universe import (
    DEFAULT_DELISTED_AFTER,
    DEFAULT_RETRY_ATTEMPTS,
    DEFAULT_RETRY_DELAY,
    QUEUE_FAILED,
    QUEUE_PENDING,
    QUEUE_PROCESSING,
    STATUS_ACTIVE,
    STATUS_DELISTED,
    STATUS_ERROR,
    STATUS_PENDING,
    finish_onboarding,
    retry_delay,
)

c = universe.c


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def record_failures(
    conn: Connection, reasons: Mapping[str, str], *, now: dt.datetime | None = None,
    attempts: int = DEFAULT_RETRY_ATTEMPTS, first_delay: dt.timedelta = DEFAULT_RETRY_DELAY,
) -> dict[str, dt.datetime | None]:
    """The symbols turn `error` with their reason and their queue rows `failed`; each gets its next
    automatic retry (None once `attempts` retries have failed). Returns symbol -> next retry."""
    now = now or _now()
    if not reasons:
        return {}
    done = dict(conn.execute(sa.select(c.symbol, c.retry_attempts).where(c.symbol.in_(list(reasons)))).all())
    scheduled: dict[str, dt.datetime | None] = {}
    for symbol, reason in reasons.items():
        failures = int(done.get(symbol) or 0) + 1
        retry_at = now + retry_delay(failures, first_delay) if failures <= attempts else None
        note = (f"; retry {failures} of {attempts} after {retry_at:%Y-%m-%d %H:%M} UTC" if retry_at
                else f"; no automatic retry left after {failures} failed attempts (`symbols retry {symbol}`)")
        finish_onboarding(conn, symbol, STATUS_ERROR, f"{reason}{note}")
        conn.execute(universe.update().where(c.symbol == symbol)
                     .values(retry_attempts=failures, next_retry_at=retry_at, updated_at=now))
        scheduled[symbol] = retry_at
    return scheduled


def mark_recovered(conn: Connection, symbols: Sequence[str]) -> None:
    """Symbols that have prices again: their failure count and retry schedule are cleared."""
    for start in range(0, len(symbols), 5000):
        conn.execute(universe.update().where(c.symbol.in_(symbols[start:start + 5000]), c.retry_attempts > 0)
                     .values(retry_attempts=0, next_retry_at=None))


def due_retries(conn: Connection, now: dt.datetime, limit: int) -> list[str]:
    """`error` symbols whose next automatic retry is due, the longest waiting first."""
    query = (sa.select(c.symbol).where(c.status == STATUS_ERROR, c.next_retry_at.is_not(None), c.next_retry_at <= now)
             .order_by(c.next_retry_at, c.symbol).limit(limit))
    return list(conn.execute(query).scalars())


def _waiting(conn: Connection, symbols: Sequence[str]) -> set[str]:
    q = queue.c
    return set(conn.execute(sa.select(q.symbol).where(
        q.symbol.in_(symbols), q.status.in_([QUEUE_PENDING, QUEUE_PROCESSING]))).scalars())


def requeue(
    conn: Connection, symbols: Iterable[str], *, requested_by: str, priority: int, reset_attempts: bool,
    statuses: Sequence[str] = (STATUS_ERROR,),
) -> list[str]:
    """Put symbols of `statuses` back in the onboarding queue (`pending`); the ones requeued.

    An operator's retry starts the count afresh (`reset_attempts`); an automatic one keeps it, so
    that the backoff grows. A symbol already waiting in the queue is not queued twice.
    """
    symbols = list(dict.fromkeys(symbols))
    if not symbols:
        return []
    rows = conn.execute(sa.select(c.symbol, c.status, c.is_regressor).where(c.symbol.in_(symbols))).all()
    eligible = {r.symbol for r in rows if r.status in statuses and not r.is_regressor}
    waiting = _waiting(conn, symbols)
    chosen = [s for s in symbols if s in eligible and s not in waiting]
    if not chosen:
        return []
    values: dict = {"status": STATUS_PENDING, "next_retry_at": None, "updated_at": _now()}
    if reset_attempts:
        values["retry_attempts"] = 0
    conn.execute(universe.update().where(c.symbol.in_(chosen)).values(**values))
    conn.execute(queue.insert(), [{"symbol": s, "status": QUEUE_PENDING, "requested_by": requested_by,
                                   "priority": priority} for s in chosen])
    return chosen


def reject(conn: Connection, symbols: Iterable[str], reason: str) -> list[str]:
    """Queued (`pending`) or `error` symbols turn `error` with `reason` and no automatic retry; their
    waiting queue rows `failed`. Returns the symbols rejected (active and delisted ones are not)."""
    symbols = list(dict.fromkeys(symbols))
    rows = conn.execute(sa.select(c.symbol, c.status, c.is_regressor).where(c.symbol.in_(symbols))).all() \
        if symbols else []
    chosen = [r.symbol for r in rows if r.status in (STATUS_PENDING, STATUS_ERROR) and not r.is_regressor]
    for symbol in chosen:
        finish_onboarding(conn, symbol, STATUS_ERROR, reason)
    if chosen:
        conn.execute(universe.update().where(c.symbol.in_(chosen)).values(next_retry_at=None))
        conn.execute(queue.update().where(queue.c.symbol.in_(chosen), queue.c.status == QUEUE_PENDING)
                     .values(status=QUEUE_FAILED, error_message=reason, completed_at=_now()))
    return chosen


def symbol_rows(conn: Connection, statuses: Sequence[str]) -> list[dict]:
    """Symbols of `statuses` with their reason, retry state and latest queue row, oldest request first."""
    latest = (sa.select(queue.c.symbol, sa.func.max(queue.c.id).label("id")).group_by(queue.c.symbol).subquery())
    q = queue.alias("q")
    query = (
        sa.select(c.symbol, c.status, c.error_message, c.retry_attempts, c.next_retry_at, c.last_price_date,
                  q.c.status.label("queue_status"), q.c.requested_by, q.c.priority, q.c.created_at.label("requested_at"))
        .select_from(universe.outerjoin(latest, latest.c.symbol == c.symbol).outerjoin(q, q.c.id == latest.c.id))
        .where(c.status.in_(list(statuses)), c.is_regressor.is_(False))
        .order_by(q.c.priority.desc(), q.c.created_at, c.symbol)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def unavailable_among(conn: Connection, symbols: Sequence[str]) -> dict[str, str]:
    """symbol -> `error` or `delisted` for those of `symbols` the pipeline does not compute."""
    if not symbols:
        return {}
    rows = conn.execute(sa.select(c.symbol, c.status).where(
        c.symbol.in_(list(symbols)), c.status.in_([STATUS_ERROR, STATUS_DELISTED])))
    return {r.symbol: r.status for r in rows}


def market_last_date(conn: Connection) -> dt.date | None:
    """The last session the regressor ETFs have a price for: how far the market has traded."""
    value = conn.execute(sa.select(sa.func.min(c.last_price_date)).where(c.is_regressor.is_(True))).scalar()
    return value if value is None or isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def sessions_fetched_without_price(conn: Connection) -> dict[str, int]:
    """symbol -> sessions after its last price on which a fetch succeeded and found no price (the
    recorded `no_price` and `gap` sessions). Sessions nobody fetched for the symbol yet (a run
    still ahead of it, a range the daily runs skipped) are not evidence and do not count."""
    g = gaps_table.c
    query = (sa.select(g.symbol, sa.func.count()).select_from(gaps_table.join(universe, c.symbol == g.symbol))
             .where(g.date > c.last_price_date, g.reason.in_([NO_PRICE, HOLE]),
                    c.status.in_([STATUS_ACTIVE, STATUS_DELISTED]), c.is_regressor.is_(False))
             .group_by(g.symbol))
    return {symbol: int(count) for symbol, count in conn.execute(query)}


def update_listing(
    conn: Connection, symbols: Sequence[str], *, after_sessions: int = DEFAULT_DELISTED_AFTER,
) -> tuple[list[str], list[str]]:
    """(delisted, reactivated) among `symbols`: an `active` symbol that was fetched without a price
    on `after_sessions` sessions since its last price turns `delisted` (history kept); a
    `delisted` one with fewer (a new price clears them) turns `active` again.

    The evidence is what the fetches recorded, not the calendar: `factor_returns` loads the ETFs
    of a run's dates before the run fetches its symbols, so counting the sessions the market
    traded since a symbol's last price delisted every symbol at the start of a backfill of more
    than `after_sessions` sessions, and after any pause of the daily runs that long."""
    market = market_last_date(conn)
    if market is None or not symbols:
        return [], []
    # Read by status, not by an IN list of a whole universe's symbols, then kept to `symbols`.
    wanted = set(symbols)
    rows = [r for r in conn.execute(sa.select(c.symbol, c.status, c.last_price_date).where(
        c.is_regressor.is_(False), c.last_price_date.is_not(None),
        c.status.in_([STATUS_ACTIVE, STATUS_DELISTED]))) if r.symbol in wanted]
    without_price = sessions_fetched_without_price(conn)
    delisted, back = [], []
    for row in rows:
        missing = without_price.get(row.symbol, 0)
        if row.status == STATUS_ACTIVE and missing >= after_sessions:
            reason = (f"fetched without a price on {missing} sessions since {row.last_price_date} "
                      f"while the market traded (through {market})")
            conn.execute(universe.update().where(c.symbol == row.symbol)
                         .values(status=STATUS_DELISTED, error_message=reason, updated_at=_now()))
            delisted.append(row.symbol)
        elif row.status == STATUS_DELISTED and missing < after_sessions:
            conn.execute(universe.update().where(c.symbol == row.symbol)
                         .values(status=STATUS_ACTIVE, error_message=None, updated_at=_now()))
            back.append(row.symbol)
    return delisted, back


def last_price_dates(conn: Connection, symbols: Sequence[str]) -> dict[str, dt.date | None]:
    if not symbols:
        return {}
    return dict(conn.execute(sa.select(c.symbol, c.last_price_date).where(c.symbol.in_(list(symbols)))).all())
