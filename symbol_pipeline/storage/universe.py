"""The symbol universe and the onboarding queue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.lib.factors import FACTORS, REGRESSOR_ETFS
from symbol_pipeline.storage.dialect import insert_ignore, upsert
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
    """Move last_price_date / last_factor_date forward (never back) for `symbols`."""
    if not symbols:
        return
    values: dict = {"updated_at": _now()}
    c = symbol_universe.c
    if last_price_date is not None:
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


def enqueue_symbols(
    conn: Connection, symbols: Iterable[str], requested_by: str = "system", priority: int = 0
) -> list[str]:
    """Queue symbols the universe does not know yet for onboarding; return those queued.

    A symbol already in the universe, or already waiting in the queue, is not queued twice.
    The symbol enters the universe as `pending` at once so that its status can be asked.
    """
    symbols = list(dict.fromkeys(symbols))
    if not symbols:
        return []
    known = known_symbols(conn, symbols)
    waiting = set(
        conn.execute(
            sa.select(symbol_onboarding_queue.c.symbol).where(
                symbol_onboarding_queue.c.symbol.in_(symbols),
                symbol_onboarding_queue.c.status.in_([QUEUE_PENDING, QUEUE_PROCESSING]),
            )
        ).scalars()
    )
    queued = [s for s in symbols if s not in known and s not in waiting]
    if queued:
        conn.execute(
            symbol_onboarding_queue.insert(),
            [{"symbol": s, "status": QUEUE_PENDING, "requested_by": requested_by, "priority": priority} for s in queued],
        )
        add_symbols(conn, queued, status=STATUS_PENDING)
    return queued


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
