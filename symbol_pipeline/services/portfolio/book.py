"""The book: portfolios and their positions, created, changed and listed; CSV import.

Every change logs itself for the position-change sensor, bumps the portfolio's version and
drops its cached analytics in the change's own transaction. `owner_id=None` means "no
ownership check" (CLI, assets); the API always passes the caller's id, and a portfolio that
belongs to someone else is reported exactly like a missing one.

Changes are serialised per portfolio by a row lock (`SELECT ... FOR UPDATE` on the portfolio,
`store.lock_portfolio`, taken before anything is read): racing requests leave the history of one
serial order, and the loser gets what that order gives it (a 404 for a second delete, a 409 for
a change to a position closed meanwhile). A position's lock is its portfolio's, so one lock
order (portfolio, then what it owns) cannot deadlock. SQLite: the database's write lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Engine

from symbol_pipeline.lib import rules
from symbol_pipeline.services.portfolio.documents import iso
from symbol_pipeline.services.portfolio.errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
)
from symbol_pipeline.services.portfolio.inputs import POSITION_FIELDS as _POSITION_FIELDS
from symbol_pipeline.services.portfolio.inputs import checked, today
from symbol_pipeline.services.portfolio.inputs import clean_position as _clean_position
from symbol_pipeline.services.portfolio.inputs import effective as _effective
from symbol_pipeline.services.portfolio.inputs import finite as _finite
from symbol_pipeline.storage.portfolio import book as store
from symbol_pipeline.storage.portfolio import cache as cache_store
from symbol_pipeline.storage.portfolio import changes as change_log
from symbol_pipeline.storage.universe import STATUS_PENDING, enqueue_symbols, known_symbols

SUPPORTED_CURRENCIES = rules.SUPPORTED_CURRENCIES
MAX_NAME_LENGTH = rules.MAX_PORTFOLIO_NAME


def parse_portfolio_id(value: Any) -> str:
    """The canonical text of a portfolio id; anything that is not a UUID is a missing portfolio."""
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        raise NotFoundError(f"portfolio {value!r} not found") from None


# --- portfolios -------------------------------------------------------------------------------


def _portfolio_doc(row) -> dict[str, Any]:
    """`equity` is the equity in force on the latest date recorded (today's)."""
    return {
        "id": row.id,
        "owner_id": row.owner_id,
        "name": row.name,
        "equity": row.equity,
        "currency": row.currency,
        "created_at": iso(row.created_at),
    }


def _owned_portfolio(conn: Connection, portfolio_id: Any, owner_id: int | None, *, lock: bool = False):
    """The portfolio if `owner_id` may see it; with `lock`, locked for a change until the transaction ends."""
    pid = parse_portfolio_id(portfolio_id)
    row = store.lock_portfolio(conn, pid) if lock else store.portfolio_row(conn, pid)
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        raise NotFoundError(f"portfolio {portfolio_id} not found")
    return row


def _record_change(conn: Connection, portfolio_id: str, kind: str) -> None:
    """Log the change for the sensor, bump the portfolio's version and drop its cached analytics,
    in the caller's transaction."""
    change_log.record_change(conn, portfolio_id, kind)
    store.bump_version(conn, portfolio_id)
    cache_store.delete_cache(conn, portfolio_id)


def create_portfolio(engine: Engine, owner_id: int, name: str, equity: Any, currency: str = "USD") -> dict[str, Any]:
    name = checked("portfolio name", rules.portfolio_name, name)
    equity = checked("equity", rules.equity, equity)
    currency = checked("currency", rules.currency, currency)
    pid = str(uuid.uuid4())
    with engine.begin() as conn:
        store.insert_portfolio(conn, pid, owner_id, name, equity, currency, today())
        change_log.record_change(conn, pid, "portfolio_created")
        row = store.portfolio_row(conn, pid)
    return _portfolio_doc(row)


def page_of_portfolios(engine: Engine, owner_id: int | None = None, limit: int | None = None,
                       offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """A page of portfolios (oldest first) and the number of portfolios in all."""
    with engine.connect() as conn:
        rows, total = store.list_portfolios(conn, owner_id, limit, offset)
    return [_portfolio_doc(r) for r in rows], total


def list_portfolios(engine: Engine, owner_id: int | None = None) -> list[dict[str, Any]]:
    return page_of_portfolios(engine, owner_id)[0]


def get_portfolio(engine: Engine, portfolio_id: Any, owner_id: int | None = None) -> dict[str, Any]:
    """The portfolio with its equity history (each equity and the date from which it applies)."""
    with engine.connect() as conn:
        row = _owned_portfolio(conn, portfolio_id, owner_id)
        history = store.equity_history(conn, row.id)
    return {**_portfolio_doc(row), "equity_history": [
        {"effective_date": iso(h.effective_date), "equity": h.equity, "recorded_at": iso(h.created_at)}
        for h in history]}


def set_equity(engine: Engine, portfolio_id: Any, equity: Any, owner_id: int | None = None,
               effective_date: Any = None) -> dict[str, Any]:
    """Record the portfolio's equity from `effective_date` on (default today; it may be zero or
    negative after losses). Earlier equities stay recorded: past dates keep theirs."""
    equity = _finite(equity, "equity", rules.MAX_EQUITY)
    day = _effective(effective_date)
    with engine.begin() as conn:
        row = _owned_portfolio(conn, portfolio_id, owner_id, lock=True)
        store.record_equity(conn, row.id, day, equity)
        _record_change(conn, row.id, "equity_updated")
        return _portfolio_doc(store.portfolio_row(conn, row.id))


def delete_portfolio(engine: Engine, portfolio_id: Any, owner_id: int | None = None) -> None:
    """Delete the portfolio with its positions, their quantity history, its equity history and its
    cached and stored analytics, in one transaction; the change log records the deletion."""
    with engine.begin() as conn:
        row = _owned_portfolio(conn, portfolio_id, owner_id, lock=True)
        store.delete_portfolio(conn, row.id)
        change_log.record_change(conn, row.id, "portfolio_deleted")


def changes_after(engine: Engine, cursor: int, limit: int = 100_000) -> list[tuple[int, str, str]]:
    """The change log after `cursor`: (id, portfolio_id, kind), oldest first."""
    with engine.connect() as conn:
        return [(r.id, r.portfolio_id, r.kind) for r in change_log.changes_after(conn, cursor, limit)]


# --- positions --------------------------------------------------------------------------------


def position_doc(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "portfolio_id": row.portfolio_id,
        "symbol": row.symbol,
        "quantity": row.quantity,
        "entry_price": row.entry_price,
        "entry_date": iso(row.entry_date),
        "exit_date": iso(row.exit_date),
        "exit_price": row.exit_price,
        "investment_class": row.investment_class,
    }


def _queue_unknown_symbols(conn: Connection, symbols: Sequence[str], requested_by: str) -> list[str]:
    """Queue symbols the universe does not know; return every one of them not yet ready (read after
    queueing: one a racing request queued while this one waited on it is pending, as serially)."""
    symbols = list(dict.fromkeys(symbols))
    enqueue_symbols(conn, symbols, requested_by=requested_by, priority=1)
    after = known_symbols(conn, symbols)
    return [s for s in symbols if after.get(s) == STATUS_PENDING]


def add_positions(engine: Engine, portfolio_id: Any, rows: Sequence[Mapping[str, Any]],
                  owner_id: int | None = None, requested_by: str = "service") -> dict[str, Any]:
    """Add positions (all or none). Returns {"positions": [...], "pending_symbols": [...]}."""
    cleaned = [_clean_position(r, f"row {i + 1}" if len(rows) > 1 else "") for i, r in enumerate(rows)]
    if not cleaned:
        raise ValidationError("no positions given")
    with engine.begin() as conn:
        portfolio = _owned_portfolio(conn, portfolio_id, owner_id, lock=True)
        ids = store.insert_positions(conn, [{"portfolio_id": portfolio.id, **r} for r in cleaned])
        pending = _queue_unknown_symbols(conn, [r["symbol"] for r in cleaned], requested_by)
        _record_change(conn, portfolio.id, "positions_added")
        docs = [position_doc(row) for row in store.positions_by_id(conn, ids)]
    return {"positions": docs, "pending_symbols": pending}


def add_position(engine: Engine, portfolio_id: Any, symbol: Any, quantity: Any, entry_price: Any = None,
                 entry_date: Any = None, investment_class: str = "equity", owner_id: int | None = None,
                 requested_by: str = "service") -> dict[str, Any]:
    """Add one position. Returns {"position": {...}, "pending_symbols": [...]}."""
    row = {"symbol": symbol, "quantity": quantity, "entry_price": entry_price, "entry_date": entry_date,
           "investment_class": investment_class}
    result = add_positions(engine, portfolio_id, [row], owner_id=owner_id, requested_by=requested_by)
    return {"position": result["positions"][0], "pending_symbols": result["pending_symbols"]}


def _owned_position(conn: Connection, position_id: Any, owner_id: int | None, *, lock: bool = False):
    """The position (with its owner) if `owner_id` may see it; with `lock`, read after its portfolio is locked."""
    try:
        pid = int(position_id)
    except (TypeError, ValueError):
        raise NotFoundError(f"position {position_id!r} not found") from None
    if lock:
        store.lock_portfolio_of_position(conn, pid)
    row = store.position_row(conn, pid)
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        raise NotFoundError(f"position {position_id} not found")
    return row


def update_position(engine: Engine, position_id: Any, owner_id: int | None = None, effective_date: Any = None,
                    **changes: Any) -> dict[str, Any]:
    """Change an open position: a new quantity from `effective_date` on (default today; earlier
    dates keep theirs), or correct its entry_price, investment_class or entry_date (the date its
    first quantity applies from)."""
    unknown = set(changes) - (_POSITION_FIELDS - {"symbol"})
    if unknown:
        raise ValidationError(f"unknown fields {sorted(unknown)}")
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise ValidationError("nothing to update")
    if effective_date is not None and "quantity" not in changes:
        raise ValidationError("effective_date dates a quantity change; give a quantity with it")
    with engine.begin() as conn:
        row = _owned_position(conn, position_id, owner_id, lock=True)
        if row.exit_date is not None:
            raise ConflictError(f"position {row.id} is closed (on {row.exit_date})")
        merged = {"symbol": row.symbol, "quantity": row.quantity, "entry_price": row.entry_price,
                  "entry_date": row.entry_date, "investment_class": row.investment_class, **changes}
        cleaned = _clean_position(merged)
        history = store.quantity_history(conn, row.id)
        entry = history[0].effective_date
        if "entry_date" in changes:
            later = history[1].effective_date if len(history) > 1 else None
            if later is not None and cleaned["entry_date"] > later:
                raise ValidationError(f"entry_date {cleaned['entry_date']} is after the quantity change of {later}")
            entry = cleaned["entry_date"]
            store.move_entry(conn, row.id, history[0].id, entry)
        if "quantity" in changes:
            day = _effective(effective_date)
            if day < entry:
                raise ValidationError(f"effective_date {day} is before the position's entry date {entry}")
            store.record_quantity(conn, row.id, day, cleaned["quantity"])
        rest = {k: cleaned[k] for k in changes if k in ("entry_price", "investment_class")}
        if rest:
            store.update_position(conn, row.id, **rest)
        _record_change(conn, row.portfolio_id, "position_updated")
        return position_doc(store.position_row(conn, row.id))


def close_position(engine: Engine, position_id: Any, exit_date: Any = None, exit_price: Any = None,
                   owner_id: int | None = None) -> dict[str, Any]:
    """Close a position on `exit_date` (default today): it is not held on that date or after."""
    exit_day = _effective(exit_date, "exit_date")
    price = None if exit_price in (None, "") else checked("exit_price", rules.price, exit_price)
    with engine.begin() as conn:
        row = _owned_position(conn, position_id, owner_id, lock=True)
        if row.exit_date is not None:
            raise ConflictError(f"position {row.id} is already closed (on {row.exit_date})")
        history = store.quantity_history(conn, row.id)
        if exit_day < history[0].effective_date:
            raise ValidationError(f"exit_date {exit_day} is before entry_date {history[0].effective_date}")
        if exit_day < history[-1].effective_date:
            raise ValidationError(f"exit_date {exit_day} is before the quantity change of {history[-1].effective_date}")
        store.update_position(conn, row.id, exit_date=exit_day, exit_price=price)
        _record_change(conn, row.portfolio_id, "position_closed")
        return position_doc(store.position_row(conn, row.id))


def quantity_history(engine: Engine, position_id: Any, owner_id: int | None = None) -> dict[str, Any]:
    """The position with every quantity it has had and the date from which each applies."""
    with engine.connect() as conn:
        row = _owned_position(conn, position_id, owner_id)
        history = store.quantity_history(conn, row.id)
    return {**position_doc(row), "quantity_history": [
        {"effective_date": iso(h.effective_date), "quantity": h.quantity, "recorded_at": iso(h.created_at)}
        for h in history]}


def list_positions(engine: Engine, portfolio_id: Any, include_closed: bool = False,
                   owner_id: int | None = None) -> list[dict[str, Any]]:
    """The positions as recorded (quantity: the latest recorded); `holdings.page_of_positions` gives
    them as of a date."""
    with engine.connect() as conn:
        portfolio = _owned_portfolio(conn, portfolio_id, owner_id)
        return [position_doc(r) for r in store.list_positions(conn, portfolio.id, include_closed)]


def portfolios_holding(engine: Engine, symbols: Sequence[str]) -> list[str]:
    """The portfolios whose exposures depend on `symbols` (an open position in one of them)."""
    if not symbols:
        return []
    with engine.connect() as conn:
        return store.portfolios_holding(conn, symbols)
