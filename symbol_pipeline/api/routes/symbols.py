"""Symbol status and factors."""

from typing import Any

from fastapi import APIRouter, HTTPException

from symbol_pipeline.api import models
from symbol_pipeline.api.deps import Caller, Db, checked_symbol
from symbol_pipeline.api.fields import AsOfDate
from symbol_pipeline.services import symbols as symbol_service

router = APIRouter(prefix="/api/v1/symbols", tags=["symbols"])


@router.get("/{symbol}/status", response_model=models.SymbolStatus)
def get_symbol_status(symbol: str, _: Caller, engine: Db) -> dict[str, Any]:
    """`ready` (active in the universe) | `pending` | `error` with its reason | `delisted`; latest factors date."""
    symbol = checked_symbol(symbol)
    status = symbol_service.symbol_status_document(engine, symbol)
    if status is None:
        raise HTTPException(404, f"symbol {symbol} is not in the universe; add a position to queue it")
    return status


@router.get("/{symbol}/factors", response_model=models.SymbolFactors)
def get_symbol_factors(symbol: str, _: Caller, engine: Db, date: AsOfDate | None = None) -> dict[str, Any]:
    """The twelve betas with r², observations and quality on `date` (default: the latest; any
    calendar date from 1995-01-03, the exchange calendar's first session, to today: the latest rows
    on or before it)."""
    symbol = checked_symbol(symbol)
    day, rows = symbol_service.symbol_factors(engine, symbol, date)
    if not rows:
        raise HTTPException(404, f"no factors for {symbol}" + (f" on {date}" if date else ""))
    return {"symbol": symbol, "date": day, "factors": rows}
