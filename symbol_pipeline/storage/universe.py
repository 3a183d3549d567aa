"""The symbol universe and the onboarding queue."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.lib.factors import FACTORS, REGRESSOR_ETFS
from symbol_pipeline.storage.dialect import insert_ignore, insert_statement, lock_name, upsert
from symbol_pipeline.storage.schema import (
    factor_definitions,
    symbol_factor_exposures,
    symbol_onboarding_queue,
    symbol_prices_daily,
    symbol_universe,
)

STATUS_PENDING = "pending"
STATUS_ACTIVE = "active"
STATUS_DELISTED = "delisted"
STATUS_ERROR = "error"

QUEUE_PENDING = "pending"
QUEUE_PROCESSING = "processing"
QUEUE_COMPLETED = "completed"
QUEUE_FAILED = "failed"

# Queue priorities (higher first): an operator's `symbols add` / `symbols retry` before a user's
# position in an unknown ticker, before an automatic retry of a failed fetch.
OPERATOR_PRIORITY = 100
USER_PRIORITY = 1
RETRY_PRIORITY = 0
RETRY_REQUESTER = "retry"

# The recovery defaults (settings override them at the entry points): a failed fetch is retried
# DEFAULT_RETRY_ATTEMPTS times, the first after DEFAULT_RETRY_DELAY, each later one after twice
# the previous delay (6 h, 12 h, 24 h, 48 h: about four days); a symbol without a price for
# DEFAULT_DELISTED_AFTER sessions on which the market traded is `delisted`.
DEFAULT_RETRY_ATTEMPTS = 4
DEFAULT_RETRY_DELAY = dt.timedelta(hours=6)
DEFAULT_DELISTED_AFTER = 10


class OnboardingLimitError(Exception):
    """A requester asked for more new symbols in a day than the cap allows; nothing was queued."""

    def __init__(self, requested_by: str, cap: int, used: int, asked: int):
        self.requested_by, self.cap, self.used, self.asked = requested_by, cap, used, asked
        super().__init__(
            f"onboarding limit reached: at most {cap} new symbols a day per user; {used} queued in the last "
            f"24 hours, {asked} more asked. Hold the position in a known symbol, or ask an operator"
        )


# The daily cap of the request being served (None: no cap, e.g. the operator's CLI). The API sets
# it around each user's request; every enqueue in that request is counted against it.
_DAILY_CAP: ContextVar[int | None] = ContextVar("symbol_pipeline_onboarding_daily_cap", default=None)


@contextlib.contextmanager
def capped_requests(cap: int | None) -> Iterator[None]:
    """Within the block, enqueue_symbols caps each requester at `cap` new symbols a day, queued at user priority."""
    token = _DAILY_CAP.set(cap)
    try:
        yield
    finally:
        _DAILY_CAP.reset(token)


def retry_delay(attempt: int, first_delay: dt.timedelta = DEFAULT_RETRY_DELAY) -> dt.timedelta:
    """The wait before retry number `attempt` (1-based): the first delay, doubled each time."""
    return first_delay * (2 ** max(attempt - 1, 0))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class SymbolStatus:
    symbol: str
    status: str
    last_price_date: dt.date | None
    last_factor_date: dt.date | None
    error_message: str | None
    queue_status: str | None
    # The universe's newest factor date; an active symbol behind it serves older betas (stale).
    latest_factor_date: dt.date | None = None

    @property
    def stale(self) -> bool:
        """Its betas are older than the newest any symbol has: its last run failed for it."""
        if self.latest_factor_date is None:
            return False
        return self.last_factor_date is None or self.last_factor_date < self.latest_factor_date


def seed_reference_data(conn: Connection) -> None:
    """Factor definitions and the regressor ETFs, idempotently."""
    upsert(
        conn,
        factor_definitions,
        [
            {
                "factor": f.name,
                "family": f.family,
                "method": f.method,
                "regressors": ",".join(f.regressors),
                "window": f.window,
                "min_observations": f.min_observations,
                "description": f.description,
            }
            for f in FACTORS
        ],
    )
    insert_ignore(
        conn,
        symbol_universe,
        [{"symbol": s, "status": STATUS_ACTIVE, "is_regressor": True} for s in REGRESSOR_ETFS],
    )


def add_symbols(conn: Connection, symbols: Iterable[str], status: str = STATUS_ACTIVE) -> list[str]:
    """Add symbols not yet in the universe with `status`; return the ones that were new."""
    symbols = list(symbols)
    if not symbols:
        return []
    existing = set(
        conn.execute(sa.select(symbol_universe.c.symbol).where(symbol_universe.c.symbol.in_(symbols))).scalars()
    )
    new = [s for s in symbols if s not in existing]
    insert_ignore(conn, symbol_universe, [{"symbol": s, "status": status} for s in new])
    return new


def set_status(conn: Connection, symbol: str, status: str, error_message: str | None = None) -> None:
    conn.execute(
        symbol_universe.update()
        .where(symbol_universe.c.symbol == symbol)
        .values(status=status, error_message=error_message, updated_at=_now())
    )


def record_progress(
    conn: Connection,
    symbols: Sequence[str],
    *,
    last_price_date: dt.date | None = None,
    last_factor_date: dt.date | None = None,
) -> None:
    """Move last_price_date / last_factor_date forward (never back) for `symbols`.

    A `delisted` symbol whose last price moves forward traded again: it is `active` from now on.
    """
    if not symbols:
        return
    values: dict = {"updated_at": _now()}
    c = symbol_universe.c
    if last_price_date is not None:
        newer = sa.and_(c.status == STATUS_DELISTED,
                        sa.or_(c.last_price_date.is_(None), c.last_price_date < last_price_date))
        values["status"] = sa.case((newer, STATUS_ACTIVE), else_=c.status)
        values["error_message"] = sa.case((newer, None), else_=c.error_message)
        values["last_price_date"] = sa.case(
            (sa.or_(c.last_price_date.is_(None), c.last_price_date < last_price_date), last_price_date),
            else_=c.last_price_date,
        )
    if last_factor_date is not None:
        values["last_factor_date"] = sa.case(
            (sa.or_(c.last_factor_date.is_(None), c.last_factor_date < last_factor_date), last_factor_date),
            else_=c.last_factor_date,
        )
    for start in range(0, len(symbols), 5000):
        conn.execute(symbol_universe.update().where(c.symbol.in_(symbols[start : start + 5000])).values(**values))


def symbols_with_status(conn: Connection, statuses: Iterable[str] = (STATUS_ACTIVE,)) -> list[str]:
    return list(
        conn.execute(
            sa.select(symbol_universe.c.symbol)
            .where(symbol_universe.c.status.in_(list(statuses)))
            .order_by(symbol_universe.c.symbol)
        ).scalars()
    )


def known_symbols(conn: Connection, symbols: Iterable[str]) -> dict[str, str]:
    """symbol -> status for the given symbols that are in the universe."""
    symbols = list(symbols)
    if not symbols:
        return {}
    rows = conn.execute(
        sa.select(symbol_universe.c.symbol, symbol_universe.c.status).where(symbol_universe.c.symbol.in_(symbols))
    )
    return {r.symbol: r.status for r in rows}


def requests_since(conn: Connection, requested_by: str, since: dt.datetime) -> int:
    """Queue rows `requested_by` created since `since` (what the daily cap counts)."""
    q = symbol_onboarding_queue.c
    return conn.execute(
        sa.select(sa.func.count()).where(q.requested_by == requested_by, q.created_at >= since)
    ).scalar_one()


def enqueue_symbols(
    conn: Connection, symbols: Iterable[str], requested_by: str = "system", priority: int = 0
) -> list[str]:
    """Queue symbols the universe does not know yet for onboarding; return those queued.

    A symbol already in the universe, or already waiting in the queue, is not queued twice.
    The symbol enters the universe as `pending` at once so that its status can be asked.
    Inside `capped_requests(cap)` (an API user's request) the symbols are queued at most at
    USER_PRIORITY, and OnboardingLimitError is raised, queueing none, when they would take
    `requested_by` past `cap` rows in the last 24 hours.

    Under parallel requests: the universe's primary key decides which transaction queues a new
    symbol (its INSERT ... ON CONFLICT DO NOTHING returns the rows it inserted; a racing one waits
    for the first to commit and then inserts nothing), so a symbol gets one queue row. The cap's
    count and insert run under a lock named after the requester (`lock_name`), so two requests of
    one user cannot both count the same headroom.
    """
    symbols = list(dict.fromkeys(symbols))
    if not symbols:
        return []
    cap = _DAILY_CAP.get()
    known = known_symbols(conn, symbols)
    waiting = set(
        conn.execute(
            sa.select(symbol_onboarding_queue.c.symbol).where(
                symbol_onboarding_queue.c.symbol.in_(symbols),
                symbol_onboarding_queue.c.status.in_([QUEUE_PENDING, QUEUE_PROCESSING]),
            )
        ).scalars()
    )
    candidates = [s for s in symbols if s not in known and s not in waiting]
    if not candidates:
        return []
    if cap is not None:
        priority = min(priority, USER_PRIORITY)
        lock_name(conn, f"onboarding-cap:{requested_by}")
    inserted = _insert_new_symbols(conn, candidates, STATUS_PENDING)
    queued = [s for s in candidates if s in inserted]
    if queued and cap is not None:
        used = requests_since(conn, requested_by, _now() - dt.timedelta(days=1))
        if used + len(queued) > cap:
            raise OnboardingLimitError(requested_by, cap, used, len(queued))
    if queued:
        conn.execute(
            symbol_onboarding_queue.insert(),
            [{"symbol": s, "status": QUEUE_PENDING, "requested_by": requested_by, "priority": priority} for s in queued],
        )
    return queued


def _insert_new_symbols(conn: Connection, symbols: Sequence[str], status: str) -> set[str]:
    """Insert the symbols the universe lacks; return those this transaction inserted. Sorted, so
    that two transactions inserting overlapping sets wait on each other in one order (no deadlock)."""
    stmt = insert_statement(conn, symbol_universe).on_conflict_do_nothing(index_elements=["symbol"])
    rows = [{"symbol": s, "status": status} for s in sorted(symbols)]
    return set(conn.execute(stmt.returning(symbol_universe.c.symbol), rows).scalars())


def symbol_status(conn: Connection, symbol: str) -> SymbolStatus | None:
    row = conn.execute(sa.select(symbol_universe).where(symbol_universe.c.symbol == symbol)).first()
    queue = conn.execute(
        sa.select(symbol_onboarding_queue.c.status, symbol_onboarding_queue.c.error_message)
        .where(symbol_onboarding_queue.c.symbol == symbol)
        .order_by(symbol_onboarding_queue.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    latest = conn.execute(
        sa.select(sa.func.max(symbol_universe.c.last_factor_date)).where(symbol_universe.c.status == STATUS_ACTIVE)
    ).scalar()
    return SymbolStatus(
        symbol=row.symbol,
        status=row.status,
        last_price_date=row.last_price_date,
        last_factor_date=row.last_factor_date,
        error_message=row.error_message or (queue.error_message if queue else None),
        queue_status=queue.status if queue else None,
        latest_factor_date=_as_date(latest),
    )


def _as_date(value) -> dt.date | None:
    """SQLite hands aggregates of DATE columns back as text."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def pending_among(conn: Connection, symbols: Iterable[str]) -> list[str]:
    """The given symbols whose status is `pending`."""
    return [s for s, status in known_symbols(conn, symbols).items() if status == STATUS_PENDING]


def symbols_with_prices(conn: Connection, symbols: Sequence[str]) -> set[str]:
    """The given symbols with at least one stored price."""
    if not symbols:
        return set()
    query = sa.select(symbol_prices_daily.c.symbol).where(symbol_prices_daily.c.symbol.in_(symbols)).distinct()
    return set(conn.execute(query).scalars())


def symbols_with_beta(conn: Connection, symbols: Sequence[str]) -> set[str]:
    """The given symbols with at least one stored beta (any factor, any date)."""
    if not symbols:
        return set()
    query = (
        sa.select(symbol_factor_exposures.c.symbol)
        .where(symbol_factor_exposures.c.symbol.in_(symbols), symbol_factor_exposures.c.beta.is_not(None))
        .distinct()
    )
    return set(conn.execute(query).scalars())


def price_counts(conn: Connection, symbols: Sequence[str]) -> dict[str, int]:
    """Stored sessions of prices per symbol."""
    if not symbols:
        return {}
    query = (
        sa.select(symbol_prices_daily.c.symbol, sa.func.count())
        .where(symbol_prices_daily.c.symbol.in_(symbols))
        .group_by(symbol_prices_daily.c.symbol)
    )
    return dict(conn.execute(query).all())


def finish_onboarding(conn: Connection, symbol: str, status: str, error: str | None) -> None:
    set_status(conn, symbol, status, error)
    conn.execute(
        symbol_onboarding_queue.update()
        .where(
            symbol_onboarding_queue.c.symbol == symbol,
            symbol_onboarding_queue.c.status.in_([QUEUE_PENDING, QUEUE_PROCESSING]),
        )
        .values(
            status=QUEUE_COMPLETED if status == STATUS_ACTIVE else QUEUE_FAILED,
            error_message=error,
            completed_at=_now(),
        )
    )
