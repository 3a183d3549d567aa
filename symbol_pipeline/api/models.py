"""The response bodies, typed: what each JSON endpoint returns, field by field, in the order the
services write them (so that a body is byte for byte what it was before these models:
symbol_pipeline_tests/api/test_bodies.py). Dates written by the services as text stay text.

The analytics endpoints (exposures, their history, risk, stress tests) serve documents cached as
JSON text, without a parse: their shape is in the OpenAPI examples of their routes instead.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

# --- portfolios and positions ---------------------------------------------------------------------


class Portfolio(BaseModel):
    id: str
    owner_id: int
    name: str
    equity: float
    currency: str
    created_at: str | None


class EquityEntry(BaseModel):
    effective_date: str | None
    equity: float
    recorded_at: str | None


class PortfolioWithHistory(Portfolio):
    equity_history: list[EquityEntry]


class Position(BaseModel):
    id: int
    portfolio_id: str
    symbol: str
    quantity: float
    entry_price: float | None
    entry_date: str | None
    exit_date: str | None
    exit_price: float | None
    investment_class: str


class QuantityEntry(BaseModel):
    effective_date: str | None
    quantity: float
    recorded_at: str | None


class PositionWithHistory(Position):
    quantity_history: list[QuantityEntry]


class HeldPosition(Position):
    """A position as of a date: `quantity` in shares of that date, `recorded_quantity` as recorded
    from `quantity_date` (the splits since make the difference)."""

    recorded_quantity: float
    quantity_date: str
    as_of: str


class PositionAdded(BaseModel):
    position: Position
    pending_symbols: list[str]


class PositionsAdded(BaseModel):
    positions: list[Position]
    pending_symbols: list[str]


# --- symbols --------------------------------------------------------------------------------------


class SymbolStatus(BaseModel):
    symbol: str
    status: str
    reason: str | None
    queue_status: str | None
    latest_factors_date: dt.date | None
    stale: bool


class FactorRow(BaseModel):
    factor: str
    beta: float | None
    beta_uncapped: float | None
    capped: bool
    alpha: float | None
    r_squared: float | None
    std_error: float | None
    observations: int | None
    quality: str
    method: str | None
    window: int | None


class SymbolFactors(BaseModel):
    symbol: str
    date: dt.date | None
    factors: list[FactorRow]


# --- operators ------------------------------------------------------------------------------------


class QueuedSymbol(BaseModel):
    symbol: str
    status: str
    error_message: str | None
    retry_attempts: int | None
    next_retry_at: str | None
    last_price_date: str | None
    queue_status: str | None
    requested_by: str | None
    priority: int | None
    requested_at: str | None


class Requeued(BaseModel):
    requeued: list[str]
    not_retried: list[str]


class Rejected(BaseModel):
    rejected: list[str]
    not_rejected: list[str]


class BatchRequested(BaseModel):
    status: str
    date: str
    request_id: int
    run_id: str | None


class BatchStatus(BaseModel):
    """`{"status": "never_run"}` before the first daily run; the other fields once there is one."""

    status: str
    run_id: str | None = None
    request_id: str | None = None
    started: float | None = None
    ended: float | None = None
    range_start: str | None = None
    range_end: str | None = None
    counts: dict[str, int | float | str | None] | None = None
