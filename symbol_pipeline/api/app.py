"""The HTTP API: a thin FastAPI layer over the portfolio service. Every request needs a bearer API key.

A user sees only their own portfolios (another user's is a 404, like a missing one); admin
endpoints need an admin key. Bad input is a 4xx with a message and writes nothing.

An entry point: `api_settings()` reads the environment, `create_app(settings)` reads nothing,
and `app_from_environment` is the factory for `uvicorn --factory`.
"""


import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from symbol_pipeline.api.limits import (
    DEFAULT_MAX_BODY_BYTES,
    MAX_BODY_ENV,
    BodyLimitMiddleware,
    short_message,
    validation_error_handler,
)
from symbol_pipeline.api.routes import admin, analytics, portfolios, risk, symbol_admin, symbols
from symbol_pipeline.config import get_settings, normalise_database_url
from symbol_pipeline.services import portfolio as service
from symbol_pipeline.services.serving import SERVING_THREADS, open_serving_engine

ROUTERS = (symbols.router, portfolios.router, analytics.router, risk.router, admin.router, symbol_admin.router)


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

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        anyio.to_thread.current_default_thread_limiter().total_tokens = SERVING_THREADS
        yield

    app = FastAPI(title="symbol_pipeline portfolio API", version="1", lifespan=lifespan,
                  description="Portfolio factor exposures, stress tests and symbol status.")
    app.state.engine = engine
    app.state.settings = settings

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

    app.state.caller_for = caller_for  # read by api.deps for requests without a body

    # Every request with a body is authenticated before a byte of it is read, then bounded: the
    # positions import has its own limit, every other path the default (portfolios.body_limits).
    app.add_middleware(BodyLimitMiddleware, authenticate=caller_for,
                       limit_for=portfolios.body_limits(settings.max_body_bytes))
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

    for router in ROUTERS:
        app.include_router(router)
    return app
