"""A portfolio's factor exposures (at a date, or on every session of a range) and stress tests, each on
the holdings of its date (no date: today's)."""

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.engine import Engine

from symbol_pipeline.api.auth import caller, key_of
from symbol_pipeline.api.deps import bearer
from symbol_pipeline.api.fields import AsOfDate, ScenarioNames
from symbol_pipeline.services import portfolio as service

# A portfolio's analytics; risk.py's router shares the prefix.
ANALYTICS_PREFIX = "/api/v1/analytics/portfolio"
router = APIRouter(prefix=ANALYTICS_PREFIX, tags=["analytics"])


async def _reader(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> service.User:
    """The caller of a read-only analytics GET: `Caller` without the onboarding cap around the
    request (these endpoints never queue a symbol), so a plain coroutine rather than a generator
    dependency. The key was checked by the middleware (api/auth.py); `credentials` declares the
    bearer scheme in the OpenAPI schema."""
    return caller(request)


# The hot GETs are coroutines that make one trip through the threadpool for the service call: a
# synchronous route (and the synchronous `Db` dependency) cost a trip each.
Reader = Annotated[service.User, Depends(_reader)]


def engine_of(request: Request) -> Engine:
    return request.app.state.engine


def checks_key(method: str, path: str) -> bool:
    """Whether the route of a request checks the caller's key in its own read (every GET here and in
    risk.py passes `key_of(request)` to the service): the middleware may then answer from an older
    memory of the key (api/auth.py)."""
    return method == "GET" and path.startswith(ANALYTICS_PREFIX + "/")


def cached_response(data: str | bytes, hit: bool, media_type: str = "application/json") -> Response:
    """A document served as stored: no parse and no re-serialisation."""
    return Response(data, media_type=media_type, headers={"X-Cache": "hit" if hit else "miss"})


@router.get("/{portfolio_id}/factor-exposures")
async def get_factor_exposures(portfolio_id: str, caller: Reader, request: Request,
                               as_of: AsOfDate | None = None) -> Response:
    """Per factor: beta, dollar exposure and coverage; gross/net exposure; missing, stale and unpriced symbols."""
    text, hit = await run_in_threadpool(service.portfolio_factor_exposures_json, engine_of(request), portfolio_id,
                                        as_of, owner_id=caller.id, key_hash=key_of(request))
    return cached_response(text, hit)


_HISTORY_EXAMPLE = {
    "portfolio_id": "0b4b3c1e-8c1f-4d7e-9a55-2f8a1c2d3e4f", "start": "2024-06-26", "end": "2024-06-28",
    "sessions": ["2024-06-26", "2024-06-27", "2024-06-28"],
    "factors": {"market_beta": [1.02, 1.05, None], "ir_beta": [-0.11, -0.1, None]},
    "gross_exposure": [251000.0, 252300.0, 0.0], "net_exposure": [249000.0, 250100.0, 0.0],
    "coverage": {"market_beta": [1.0, 1.0, None], "ir_beta": [0.98, 0.98, None]},
}
_HISTORY_CSV = ("session,gross_exposure,net_exposure,beta_market_beta,...,coverage_market_beta,...\n"
                "2024-06-26,251000.0,249000.0,1.02,...,1.0,...\n")


@router.get(
    "/{portfolio_id}/factor-exposures/history",
    responses={200: {"description": "One entry per session (`Accept: text/csv`: one line per session)",
                     "content": {"application/json": {"example": _HISTORY_EXAMPLE},
                                 "text/csv": {"schema": {"type": "string"}, "example": _HISTORY_CSV}}},
               422: {"description": "start after end, a date in the future, or start before the portfolio's first date"}},
)
async def get_factor_exposure_history(
    portfolio_id: str, caller: Reader, request: Request,
    start: Annotated[AsOfDate | None, Query(description="Default: 252 sessions before end, clipped to the "
                                                         "portfolio's first date")] = None,
    end: Annotated[AsOfDate | None, Query(description="Default: today")] = None,
) -> Response:
    """The twelve portfolio betas, gross and net exposure and coverage on every session from start to
    end, each on the holdings of that session: the figures of `factor-exposures?as_of=<session>`.
    Betas are null on sessions before any beta is stored and where that session's equity is not positive."""
    data, hit = await run_in_threadpool(service.exposure_history_json, engine_of(request), portfolio_id, start, end,
                                        owner_id=caller.id, key_hash=key_of(request))
    if "text/csv" in request.headers.get("accept", ""):
        return cached_response(service.exposure_history_csv(orjson.loads(data)), hit, "text/csv")
    return cached_response(data, hit)


@router.get("/{portfolio_id}/stress-test")
async def get_stress_test(
    portfolio_id: str, caller: Reader, request: Request, date: AsOfDate | None = None,
    scenario: Annotated[ScenarioNames, Query(description="Scenario names (default: all); repeats are computed "
                                                          "once, at most 20 distinct")] = None,
) -> Response:
    """Per scenario and factor model: direct and correlated P&L and each factor's contribution (headline: market)."""
    text, hit = await run_in_threadpool(service.stress_test_json, engine_of(request), portfolio_id, date, scenario,
                                        owner_id=caller.id, scenarios_file=request.app.state.settings.scenarios_file,
                                        key_hash=key_of(request))
    return cached_response(text, hit)
