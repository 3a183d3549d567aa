"""A portfolio's factor exposures and stress tests."""

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from symbol_pipeline.api.deps import Caller, Db, Settings
from symbol_pipeline.services import portfolio as service

router = APIRouter(tags=["analytics"])


@router.get("/api/v1/analytics/portfolio/{portfolio_id}/factor-exposures")
def get_factor_exposures(portfolio_id: str, caller: Caller, engine: Db, as_of: dt.date | None = None) -> Response:
    """Per factor: beta, dollar exposure and coverage; gross/net exposure; missing, stale and unpriced symbols."""
    text, hit = service.portfolio_factor_exposures_json(engine, portfolio_id, as_of, owner_id=caller.id)
    return Response(text, media_type="application/json", headers={"X-Cache": "hit" if hit else "miss"})


@router.get("/api/v1/analytics/portfolio/{portfolio_id}/stress-test")
def get_stress_test(
    portfolio_id: str, caller: Caller, engine: Db, settings: Settings, date: dt.date | None = None,
    scenario: Annotated[list[str] | None, Query(description="Scenario names (default: all)")] = None,
) -> dict[str, Any]:
    """Per scenario and factor model: direct and correlated P&L and each factor's contribution (headline: market)."""
    return service.run_stress_test(engine, portfolio_id, date, scenario, owner_id=caller.id,
                                   scenarios_file=settings.scenarios_file)
