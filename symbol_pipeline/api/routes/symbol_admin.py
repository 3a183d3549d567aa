"""Operator endpoints for the universe: list queued, failed and delisted symbols, retry them at
once, or reject them for good. Every route needs an admin key."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from symbol_pipeline.api import models
from symbol_pipeline.api.deps import Admin, Db
from symbol_pipeline.api.fields import CleanStr, Symbol
from symbol_pipeline.api.parsing import OffloadedRoute
from symbol_pipeline.services import symbols as symbol_service

router = APIRouter(prefix="/api/v1/admin/symbols", tags=["admin"], route_class=OffloadedRoute)

MAX_SYMBOLS_PER_REQUEST = 1000


class SymbolsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[Symbol] = Field(min_length=1, max_length=MAX_SYMBOLS_PER_REQUEST)


class RejectIn(SymbolsIn):
    reason: Annotated[CleanStr, Field(min_length=1, max_length=500)] = "not supported"


@router.get("", response_model=list[models.QueuedSymbol])
def list_symbols(
    _: Admin, engine: Db,
    status: Annotated[list[Literal["queued", "error", "delisted"]] | None,
                      Query(description="Which symbols (default: queued and error)", max_length=3)] = None,
) -> list[dict[str, Any]]:
    """Queued, erroneous and/or delisted symbols: reason, failed attempts, next automatic retry,
    who asked and at which priority."""
    return symbol_service.symbol_queue(engine, list(dict.fromkeys(status or ("queued", "error"))))


@router.post("/retry", response_model=models.Requeued)
def retry_symbols(body: SymbolsIn, caller: Admin, engine: Db) -> dict[str, list[str]]:
    """Queue `error` or `delisted` symbols again at once, at operator priority, attempts counted afresh."""
    return symbol_service.retry_symbols(engine, body.symbols, f"api:{caller.name}")


@router.post("/reject", response_model=models.Rejected)
def reject_symbols(body: RejectIn, _: Admin, engine: Db) -> dict[str, list[str]]:
    """Refuse queued or `error` symbols for good: `error` with the reason, no automatic retry."""
    return symbol_service.reject_symbols(engine, body.symbols, body.reason)
