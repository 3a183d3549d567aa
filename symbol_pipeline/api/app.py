"""The HTTP API: a thin FastAPI layer over the portfolio service. Every request needs a bearer API key.

A user sees only their own portfolios (another user's is a 404, like a missing one); admin
endpoints need an admin key. Bad input is a 4xx with a message and writes nothing.

An entry point: `api_settings()` reads the environment, `create_app(settings)` reads nothing,
and `app_from_environment` is the factory for `uvicorn --factory`.
"""


import contextlib
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, field_validator
from sqlalchemy.engine import Engine

from symbol_pipeline.api.limits import (
    DEFAULT_MAX_BODY_BYTES,
    MAX_BODY_ENV,
    UNAUTHORISED_DETAIL,
    USER_SCOPE_KEY,
    BodyLimitMiddleware,
    short_message,
    validation_error_handler,
)
from symbol_pipeline.config import get_settings, normalise_database_url
from symbol_pipeline.lib.symbols import InvalidSymbolError, validate_symbol
from symbol_pipeline.runs.requests import daily_batch_status, request_daily_symbol_batch
from symbol_pipeline.services import portfolio as service
from symbol_pipeline.services import symbols as symbol_service
from symbol_pipeline.services.serving import SERVING_THREADS, open_serving_engine

Number = StrictInt | StrictFloat


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


class SymbolBatchIn(_Strict):
    date: dt.date | None = None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


@dataclass(frozen=True)
class ApiSettings:
    """What the API process is given: its database, the Dagster data folder the admin endpoints
    launch runs in, how long an accepted key is remembered, an extra stress scenarios file, and
    the largest request body accepted (413 beyond it, before anything is parsed)."""

    database_url: str
    data_dir: Path
    auth_cache_seconds: float = service.DEFAULT_AUTH_CACHE_SECONDS
    scenarios_file: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def api_settings(database_url: str | None = None) -> ApiSettings:
    """The API's settings from the environment (`database_url` overrides the configured one)."""
    settings = get_settings()
    return ApiSettings(
        database_url=normalise_database_url(database_url or settings.database_url),
        data_dir=settings.data_dir,
        auth_cache_seconds=float(os.environ.get("SYMBOL_PIPELINE_AUTH_CACHE_SECONDS",
                                                service.DEFAULT_AUTH_CACHE_SECONDS)),
        scenarios_file=os.environ.get("SYMBOL_PIPELINE_SCENARIOS_FILE") or None,
        max_body_bytes=int(os.environ.get(MAX_BODY_ENV) or DEFAULT_MAX_BODY_BYTES),
    )


def app_from_environment() -> FastAPI:
    """The application configured from the environment: `uvicorn symbol_pipeline.api.app:app_from_environment --factory`."""
    return create_app(api_settings())


def create_app(settings: ApiSettings) -> FastAPI:
    """The application over the database of `settings` (its tables created or upgraded here)."""
    engine: Engine = open_serving_engine(settings.database_url)
    remember_seconds = settings.auth_cache_seconds
    data_dir = settings.data_dir

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        anyio.to_thread.current_default_thread_limiter().total_tokens = SERVING_THREADS
        yield

    app = FastAPI(title="symbol_pipeline portfolio API", version="1", lifespan=lifespan,
                  description="Portfolio factor exposures, stress tests and symbol status.")
    app.state.engine = engine

    async def caller_for(header: str) -> service.User | None:
        # Async so that a remembered key costs no trip through the threadpool; only a key not
        # seen in the last few seconds goes to the database (in a worker thread).
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None
        found = service.remembered_user(key)
        if found is None:
            found = await run_in_threadpool(service.authenticate, engine, key, remember_seconds)
        return found

    # Every request with a body is authenticated before a byte of it is read, then bounded (no
    # endpoint imports files yet, so one limit for all paths).
    app.add_middleware(BodyLimitMiddleware, authenticate=caller_for,
                       limit_for=lambda _path: settings.max_body_bytes)
    app.add_exception_handler(RequestValidationError, validation_error_handler)

    @app.exception_handler(service.NotFoundError)
    async def _not_found(_: Request, exc: service.NotFoundError):
        return _error(404, str(exc))

    @app.exception_handler(service.ValidationError)
    async def _invalid(_: Request, exc: service.ValidationError):
        return _error(422, short_message(str(exc)))  # a message may quote the input

    @app.exception_handler(service.StressDataError)
    async def _no_data(_: Request, exc: service.StressDataError):
        return _error(409, str(exc))

    async def user(request: Request) -> service.User:
        # A request with a body was authenticated by BodyLimitMiddleware already.
        found = request.scope.get(USER_SCOPE_KEY) or await caller_for(request.headers.get("authorization", ""))
        if found is None:
            raise HTTPException(401, UNAUTHORISED_DETAIL, headers={"WWW-Authenticate": "Bearer"})
        return found

    def admin(caller: Annotated[service.User, Depends(user)]) -> service.User:
        if not caller.is_admin:
            raise HTTPException(403, "admin API key required")
        return caller

    Caller = Annotated[service.User, Depends(user)]
    Admin = Annotated[service.User, Depends(admin)]

    def checked_symbol(symbol: str) -> str:
        try:
            return validate_symbol(symbol)
        except InvalidSymbolError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/api/v1/symbols/{symbol}/status", tags=["symbols"])
    def get_symbol_status(symbol: str, _: Caller) -> dict[str, Any]:
        """`ready` (active in the universe) | `pending` | `error` with its reason | `delisted`; latest factors date."""
        symbol = checked_symbol(symbol)
        status = symbol_service.symbol_status_document(engine, symbol)
        if status is None:
            raise HTTPException(404, f"symbol {symbol} is not in the universe; add a position to queue it")
        return status

    @app.get("/api/v1/symbols/{symbol}/factors", tags=["symbols"])
    def get_symbol_factors(symbol: str, _: Caller, date: dt.date | None = None) -> dict[str, Any]:
        """The twelve betas with r², observations and quality on `date` (default: the latest)."""
        symbol = checked_symbol(symbol)
        day, rows = symbol_service.symbol_factors(engine, symbol, date)
        if not rows:
            raise HTTPException(404, f"no factors for {symbol}" + (f" on {date}" if date else ""))
        return {"symbol": symbol, "date": day, "factors": rows}

    @app.post("/api/v1/portfolios", status_code=201, tags=["portfolios"])
    def create_portfolio(body: PortfolioIn, caller: Caller) -> dict[str, Any]:
        return service.create_portfolio(engine, caller.id, body.name, body.equity, body.currency)

    @app.get("/api/v1/portfolios", tags=["portfolios"])
    def list_portfolios(caller: Caller) -> list[dict[str, Any]]:
        return service.list_portfolios(engine, caller.id)

    @app.post("/api/v1/positions", status_code=201, tags=["portfolios"])
    def create_position(body: PositionIn, caller: Caller) -> dict[str, Any]:
        """Add a position; symbols the universe does not know are queued and named in `pending_symbols`."""
        return service.add_position(
            engine, body.portfolio_id, body.symbol, body.quantity, entry_price=body.entry_price,
            entry_date=body.entry_date, investment_class=body.investment_class, owner_id=caller.id,
            requested_by=f"api:{caller.name}",
        )

    @app.get("/api/v1/analytics/portfolio/{portfolio_id}/factor-exposures", tags=["analytics"])
    def get_factor_exposures(portfolio_id: str, caller: Caller, as_of: dt.date | None = None) -> Response:
        """Per factor: beta, dollar exposure and coverage; gross/net exposure; missing, stale and unpriced symbols."""
        text, hit = service.portfolio_factor_exposures_json(engine, portfolio_id, as_of, owner_id=caller.id)
        return Response(text, media_type="application/json", headers={"X-Cache": "hit" if hit else "miss"})

    @app.get("/api/v1/analytics/portfolio/{portfolio_id}/stress-test", tags=["analytics"])
    def get_stress_test(
        portfolio_id: str, caller: Caller, date: dt.date | None = None,
        scenario: Annotated[list[str] | None, Query(description="Scenario names (default: all)")] = None,
    ) -> dict[str, Any]:
        """Per scenario and factor model: direct and correlated P&L and each factor's contribution (headline: market)."""
        return service.run_stress_test(engine, portfolio_id, date, scenario, owner_id=caller.id,
                                       scenarios_file=settings.scenarios_file)

    @app.post("/api/v1/admin/symbol-batch/run", status_code=202, tags=["admin"])
    def run_symbol_batch(caller: Admin, body: SymbolBatchIn | None = None) -> Any:
        """Ask the Dagster daemon for the daily symbol run (a request its sensor starts): 202 with the
        request id; 409 while a daily run of that date is requested, queued or running; 503 without a daemon."""
        status, reply = request_daily_symbol_batch(engine, data_dir, body.date if body else None, f"api:{caller.name}")
        return reply if status == 202 else JSONResponse(reply, status_code=status)

    @app.get("/api/v1/admin/symbol-batch/status", tags=["admin"])
    def get_symbol_batch_status(_: Admin) -> Any:
        """The latest daily symbol run (not onboarding nor backfill runs) with its counts."""
        return daily_batch_status(data_dir)

    return app
