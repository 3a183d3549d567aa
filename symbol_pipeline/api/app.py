"""The HTTP API: a thin FastAPI layer over the portfolio service. Every request needs a bearer API key.

A user sees only their own portfolios (another user's is a 404, like a missing one); admin
endpoints need an admin key. Bad input is a 4xx with a message and writes nothing.

An entry point: `api_settings()` (api/settings.py) reads the environment, `create_app(settings)`
reads nothing, and `app_from_environment` is the factory for `uvicorn --factory`.
"""


import asyncio
import contextlib
import gc

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from symbol_pipeline.api import parsing
from symbol_pipeline.api.auth import authenticator
from symbol_pipeline.api.docs import install_docs
from symbol_pipeline.api.errors import install_error_handlers
from symbol_pipeline.api.fast_reads import FastReadsMiddleware
from symbol_pipeline.api.headers import SingleAuthorizationMiddleware
from symbol_pipeline.api.limits import BodyLimitMiddleware
from symbol_pipeline.api.outages import OutageMiddleware
from symbol_pipeline.api.routes import admin, analytics, portfolios, risk, symbol_admin, symbols

# Re-exported: the application's settings and their one reader.
from symbol_pipeline.api.settings import ApiSettings, api_settings
from symbol_pipeline.services.serving import SERVING_THREADS, open_serving_engine, outage

__all__ = ["ROUTERS", "ApiSettings", "api_settings", "app_from_environment", "create_app"]

ROUTERS = (symbols.router, portfolios.router, portfolios.positions_router, analytics.router, risk.router, admin.router,
           symbol_admin.router)


def app_from_environment() -> FastAPI:
    """The application configured from the environment: `uvicorn symbol_pipeline.api.app:app_from_environment --factory`."""
    return create_app(api_settings(), freeze_heap=True)


def create_app(settings: ApiSettings, *, freeze_heap: bool = False) -> FastAPI:
    """The application over the database of `settings` (its tables created or upgraded here).

    `freeze_heap`, for a server process: at start-up, what is imported and built so far (about
    230,000 objects: FastAPI's, SQLAlchemy's, pandas', Dagster's) leaves the garbage collector's
    reach (`gc.freeze()`). Each full collection scanned them all, a pause of 60 to 150 ms in which
    the worker answered nothing: the hits' tail (docs/performance.md). Not for a process that
    builds many apps, such as the tests: what it froze is never collected.
    """
    engine: Engine = open_serving_engine(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        anyio.to_thread.current_default_thread_limiter().total_tokens = SERVING_THREADS
        # The body-parsing worker starts in the background, ready before the first large body.
        warming = asyncio.ensure_future(parsing.warm_up())
        if freeze_heap:
            gc.freeze()
        yield
        warming.cancel()

    # docs_url/redoc_url None: FastAPI's pages load Swagger UI and ReDoc from public CDNs; install_docs
    # serves the same pages from the package.
    app = FastAPI(title="symbol_pipeline portfolio API", version="1", lifespan=lifespan,
                  description="Portfolio factor exposures, stress tests and symbol status.",
                  docs_url=None, redoc_url=None)
    app.state.engine = engine
    app.state.settings = settings

    # Every request is authenticated here, once (api/auth.py), and one with a body before a byte of
    # it is read; then the body is bounded: the positions import has its own limit, every other
    # path the default (portfolios.body_limits).
    # Inside the key check: the analytics GETs answered without FastAPI's routing (api/fast_reads.py).
    app.add_middleware(FastReadsMiddleware, engine=engine, settings=settings)
    app.add_middleware(BodyLimitMiddleware, authenticate=authenticator(engine, settings.auth_cache_seconds),
                       limit_for=portfolios.body_limits(settings.max_body_bytes, settings.max_import_bytes),
                       checks_key=analytics.checks_key)
    # A database outage anywhere below, the key check included, is a 503.
    app.add_middleware(OutageMiddleware, classify=outage)
    # Added last, so outermost: two Authorization headers are refused before anything reads one.
    app.add_middleware(SingleAuthorizationMiddleware)
    install_error_handlers(app)

    for router in ROUTERS:
        app.include_router(router)
    install_docs(app)
    return app
