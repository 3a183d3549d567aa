"""Portfolios and their positions."""

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from symbol_pipeline.api.deps import Caller, Db
from symbol_pipeline.api.fields import Number
from symbol_pipeline.lib.symbols import validate_symbol
from symbol_pipeline.services import portfolio as service

router = APIRouter(tags=["portfolios"])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PortfolioIn(_Strict):
    name: StrictStr = Field(min_length=1, max_length=128)
    equity: Number = Field(gt=0, description="Cash equity in USD; must be positive")
    currency: StrictStr = Field("USD", max_length=16, description="Only USD is supported")


class PositionIn(_Strict):
    portfolio_id: StrictStr
    symbol: StrictStr = Field(description="Ticker: letters, digits and . - ^ =, at most 20 characters")
    quantity: Number = Field(description="Signed quantity; shorts are negative")
    entry_price: Number | None = Field(None, gt=0)
    entry_date: dt.date | None = None
    investment_class: StrictStr = Field("equity", max_length=32)

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        return validate_symbol(value)

    @field_validator("quantity")
    @classmethod
    def _quantity(cls, value: float) -> float:
        if value == 0:
            raise ValueError("quantity must not be zero (shorts are negative)")
        return value


@router.post("/api/v1/portfolios", status_code=201)
def create_portfolio(body: PortfolioIn, caller: Caller, engine: Db) -> dict[str, Any]:
    return service.create_portfolio(engine, caller.id, body.name, body.equity, body.currency)


@router.get("/api/v1/portfolios")
def list_portfolios(caller: Caller, engine: Db) -> list[dict[str, Any]]:
    return service.list_portfolios(engine, caller.id)


@router.post("/api/v1/positions", status_code=201)
def create_position(body: PositionIn, caller: Caller, engine: Db) -> dict[str, Any]:
    """Add a position; symbols the universe does not know are queued and named in `pending_symbols`."""
    return service.add_position(
        engine, body.portfolio_id, body.symbol, body.quantity, entry_price=body.entry_price,
        entry_date=body.entry_date, investment_class=body.investment_class, owner_id=caller.id,
        requested_by=f"api:{caller.name}",
    )
