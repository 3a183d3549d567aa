"""Portfolios and their positions: created, listed a page at a time, changed with effective dates
(a quantity or an equity applies from its date on; earlier dates keep theirs), closed, deleted,
and positions imported as CSV or JSON (all or nothing, under their own body limit).

Lists are paginated with `limit` and `offset`; the body is the page (a list), the total is in
`X-Total-Count` and the next page in `Link: <...>; rel="next"`.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from symbol_pipeline.api import models
from symbol_pipeline.api.deps import Caller, Db, Settings, requester
from symbol_pipeline.api.fields import (
    AsOfDate,
    CleanStr,
    Currency,
    Equity,
    InvestmentClass,
    PortfolioName,
    Price,
    Quantity,
    Symbol,
)
from symbol_pipeline.api.openapi_extras import IMPORT_BODY, portfolio_links, position_links
from symbol_pipeline.api.parsing import INLINE_BYTES, OffloadedRoute, offload
from symbol_pipeline.services import portfolio as service

# One router per resource: the portfolios, and the positions addressed by their own id.
router = APIRouter(prefix="/api/v1/portfolios", tags=["portfolios"], route_class=OffloadedRoute)
positions_router = APIRouter(prefix="/api/v1/positions", tags=["portfolios"], route_class=OffloadedRoute)

# --- pagination and the import body limit ----------------------------------------------------

DEFAULT_PAGE = 100
MAX_PAGE = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Page size (at most {MAX_PAGE})")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="Items to skip")]
_PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"headers": {
    "X-Total-Count": {"description": "Items in all pages", "schema": {"type": "integer"}},
    "Link": {"description": 'The next page, `<url>; rel="next"`, while there is one', "schema": {"type": "string"}},
}}}

IMPORT_PATH_SUFFIX = "/positions/import"


def body_limits(default: int, import_limit: int) -> Callable[[str], int]:
    """`limit_for(path)` of the body-limit middleware: the import endpoint gets its own limit
    (SYMBOL_PIPELINE_API_MAX_IMPORT_BYTES), every other path `default`."""
    return lambda path: import_limit if path.endswith(IMPORT_PATH_SUFFIX) else default


def _paged(request: Request, response: Response, docs: list, total: int, limit: int, offset: int) -> list:
    response.headers["X-Total-Count"] = str(total)
    if offset + len(docs) < total:
        url = request.url.include_query_params(limit=limit, offset=offset + len(docs))
        response.headers["Link"] = f'<{url}>; rel="next"'
    return docs



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PortfolioIn(_Strict):
    name: PortfolioName
    equity: Equity
    currency: Currency = "USD"


class PositionIn(_Strict):
    portfolio_id: CleanStr = Field(max_length=64)
    symbol: Symbol
    quantity: Quantity
    entry_price: Price | None = None
    entry_date: AsOfDate | None = None
    investment_class: InvestmentClass = "equity"


@router.post("", status_code=201, response_model=models.Portfolio,
             responses={201: {"links": portfolio_links("$response.body#/id")}})
def create_portfolio(body: PortfolioIn, caller: Caller, engine: Db) -> dict[str, Any]:
    return service.create_portfolio(engine, caller.id, body.name, body.equity, body.currency)


@router.get("", response_model=list[models.Portfolio], responses=_PAGE_RESPONSES)
def list_portfolios(caller: Caller, engine: Db, request: Request, response: Response,
                    limit: Limit = DEFAULT_PAGE, offset: Offset = 0) -> list[dict[str, Any]]:
    """The caller's portfolios, oldest first, a page at a time (`X-Total-Count`, `Link: rel="next"`)."""
    docs, total = service.page_of_portfolios(engine, caller.id, limit, offset)
    return _paged(request, response, docs, total, limit, offset)


@positions_router.post("", status_code=201, response_model=models.PositionAdded,
                       responses={201: {"links": position_links("$response.body#/position/id")}})
def create_position(body: PositionIn, caller: Caller, engine: Db) -> dict[str, Any]:
    """Add a position; symbols the universe does not know are queued and named in `pending_symbols`."""
    return service.add_position(
        engine, body.portfolio_id, body.symbol, body.quantity, entry_price=body.entry_price,
        entry_date=body.entry_date, investment_class=body.investment_class, owner_id=caller.id,
        requested_by=requester(caller),
    )


# --- portfolios ---------------------------------------------------------------------------------

_PORTFOLIO_EXAMPLE = {"id": "0b4b3c1e-8c1f-4d7e-9a55-2f8a1c2d3e4f", "owner_id": 1, "name": "main", "equity": 250000.0,
                      "currency": "USD", "created_at": "2024-06-03T14:00:00+00:00"}


class EquityIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"equity": 250000, "effective_date": "2024-06-03"}]})
    equity: Equity
    effective_date: AsOfDate | None = Field(None, description="From when it applies (default today); not in the future")


@router.get("/{portfolio_id}", response_model=models.PortfolioWithHistory, responses={200: {"content": {"application/json": {"example": {
    **_PORTFOLIO_EXAMPLE, "equity_history": [
        {"effective_date": "2024-06-03", "equity": 250000.0, "recorded_at": "2024-06-03T14:00:00+00:00"}]}}}}})
def get_portfolio(portfolio_id: str, caller: Caller, engine: Db) -> dict[str, Any]:
    """The portfolio and every equity it has had, each with the date from which it applies."""
    return service.get_portfolio(engine, portfolio_id, owner_id=caller.id)


@router.delete("/{portfolio_id}", status_code=204)
def delete_portfolio(portfolio_id: str, caller: Caller, engine: Db) -> Response:
    """Delete the portfolio with its positions, their history, its equity history and its cached analytics,
    in one transaction."""
    service.delete_portfolio(engine, portfolio_id, owner_id=caller.id)
    return Response(status_code=204)


@router.post("/{portfolio_id}/equity", response_model=models.Portfolio,
             responses={200: {"content": {"application/json": {"example": _PORTFOLIO_EXAMPLE}}}})
def set_equity(portfolio_id: str, body: EquityIn, caller: Caller, engine: Db) -> dict[str, Any]:
    """Record the equity from `effective_date` on (default today); earlier dates keep theirs."""
    return service.set_equity(engine, portfolio_id, body.equity, owner_id=caller.id,
                              effective_date=body.effective_date)


# --- positions ----------------------------------------------------------------------------------

_POSITION_EXAMPLE = {"id": 7, "portfolio_id": _PORTFOLIO_EXAMPLE["id"], "symbol": "AAPL", "quantity": 1000.0,
                     "entry_price": 190.5, "entry_date": "2024-06-03", "exit_date": None, "exit_price": None,
                     "investment_class": "equity"}


class PositionChangeIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"quantity": 1500, "effective_date": "2024-06-12"}, {"entry_price": 191.25}]})
    quantity: Quantity | None = Field(None, description="The new quantity, in shares of effective_date")
    effective_date: AsOfDate | None = Field(None, description="From when the quantity applies (default today)")
    entry_price: Price | None = None
    entry_date: AsOfDate | None = Field(None, description="A corrected entry date: the first quantity applies from it")
    investment_class: InvestmentClass | None = None


class CloseIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"exit_date": "2024-06-20", "exit_price": 201.0}]})
    exit_date: AsOfDate | None = Field(None, description="Not held on this date or after (default today)")
    exit_price: Price | None = None


@router.get("/{portfolio_id}/positions", response_model=list[models.HeldPosition], responses={200: {**_PAGE_RESPONSES[200], "content": {
    "application/json": {"example": [{**_POSITION_EXAMPLE, "quantity": 2000.0, "recorded_quantity": 1000.0,
                                      "quantity_date": "2024-06-03", "as_of": "2024-06-28"}]}}}})
def list_positions(portfolio_id: str, caller: Caller, engine: Db, request: Request, response: Response,
                   as_of: AsOfDate | None = None, limit: Limit = DEFAULT_PAGE, offset: Offset = 0) -> list[dict[str, Any]]:
    """The positions open on `as_of` (default today) with the quantity in force then, in shares of
    that date (`recorded_quantity` from `quantity_date`, times the splits since), a page at a time."""
    docs, total = service.page_of_positions(engine, portfolio_id, as_of, owner_id=caller.id, limit=limit,
                                            offset=offset)
    return _paged(request, response, docs, total, limit, offset)


@positions_router.get("/{position_id}", response_model=models.PositionWithHistory, responses={200: {"content": {"application/json": {"example": {
    **_POSITION_EXAMPLE, "quantity_history": [
        {"effective_date": "2024-06-03", "quantity": 1000.0, "recorded_at": "2024-06-03T14:00:00+00:00"}]}}}}})
def get_position(position_id: int, caller: Caller, engine: Db) -> dict[str, Any]:
    """The position with every quantity it has had and the date from which each applies."""
    return service.quantity_history(engine, position_id, owner_id=caller.id)


@positions_router.patch("/{position_id}", response_model=models.Position,
                        responses={200: {"content": {"application/json": {"example": _POSITION_EXAMPLE}},
                               "links": position_links("$response.body#/id")}})
def change_position(position_id: int, body: PositionChangeIn, caller: Caller, engine: Db) -> dict[str, Any]:
    """A new quantity from `effective_date` on (earlier dates keep theirs), or a corrected entry price,
    entry date or investment class, of an open position."""
    changes = body.model_dump(exclude_none=True, exclude={"effective_date"})
    return service.update_position(engine, position_id, owner_id=caller.id, effective_date=body.effective_date,
                                   **changes)


@positions_router.post("/{position_id}/close", response_model=models.Position,
                       responses={200: {"content": {"application/json": {"example": {
                 **_POSITION_EXAMPLE, "exit_date": "2024-06-20", "exit_price": 201.0}}},
                 "links": portfolio_links("$response.body#/portfolio_id")}})
def close_position(position_id: int, caller: Caller, engine: Db, body: CloseIn | None = None) -> dict[str, Any]:
    """Close the position on `exit_date` (default today): it is not held on that date or after."""
    body = body or CloseIn()
    return service.close_position(engine, position_id, exit_date=body.exit_date, exit_price=body.exit_price,
                                  owner_id=caller.id)


@router.post(f"/{{portfolio_id}}{IMPORT_PATH_SUFFIX}", status_code=201, response_model=models.PositionsAdded,
             openapi_extra={"requestBody": IMPORT_BODY},
             responses={201: {"content": {"application/json": {"example": {
                 "positions": [_POSITION_EXAMPLE], "pending_symbols": []}}},
                 "links": {**position_links("$response.body#/positions/0/id"),
                           "DeletePortfolio": portfolio_links("$request.path.portfolio_id")["DeletePortfolio"]}},
                 413: {"description": "Body larger than SYMBOL_PIPELINE_API_MAX_IMPORT_BYTES (default 16 MB), or more rows than "
                                      "SYMBOL_PIPELINE_API_MAX_IMPORT_ROWS (default 10,000)"}})
async def import_positions(portfolio_id: str, request: Request, caller: Caller, engine: Db,
                           settings: Settings) -> dict[str, Any]:
    """Add every position of a CSV (`Content-Type: text/csv`, header
    symbol,quantity[,entry_price,entry_date,investment_class]) or of a JSON list, with the CLI's
    validation: all or none (a 422 naming the row writes nothing, a 413 beyond the row limit)."""
    body = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    kinds = {"text/csv": "csv", "text/plain": "csv", "application/json": "json"}
    if media not in kinds:
        return Response('{"detail":"Content-Type must be text/csv or application/json"}', status_code=415,
                        media_type="application/json")
    # Parsed and bounded off the event loop when big (api/parsing.py); only the rows come back.
    if len(body) <= INLINE_BYTES:
        rows = service.parse_rows(kinds[media], body, settings.max_import_rows)
    else:
        rows = await offload(service.parse_rows, kinds[media], body, settings.max_import_rows)
    return await run_in_threadpool(service.add_positions, engine, portfolio_id, rows, owner_id=caller.id,
                                   requested_by=requester(caller))
