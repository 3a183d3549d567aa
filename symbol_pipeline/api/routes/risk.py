"""A portfolio's risk decomposition per factor model (market, rates, style; headline style)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from symbol_pipeline.api.auth import key_of
from symbol_pipeline.api.fields import AsOfDate
from symbol_pipeline.api.routes.analytics import ANALYTICS_PREFIX, Reader, cached_response, engine_of
from symbol_pipeline.services import portfolio as service

router = APIRouter(prefix=ANALYTICS_PREFIX, tags=["analytics"])


def _model(fv: float, sv: float, cov: float, contributions: dict[str, float], exposures: list[float]) -> dict:
    total = fv + sv
    return {
        "factor_variance": fv, "specific_variance": sv, "total_variance": total,
        "volatility_annualised": round((252 * total) ** 0.5, 6),
        "var_95_1d": round(1.6449 * total**0.5 * 250_000, 2), "var_99_1d": round(2.3263 * total**0.5 * 250_000, 2),
        "coverage": cov, "contributions": contributions,
        "exposures": dict(zip(contributions, exposures)), "missing_symbols": [], "factors": list(contributions),
        "etfs": [], "covariance_sessions": 252, "error": None,
    }


_STYLE = {"ridge_value": 2.1e-5, "ridge_growth": 3.4e-5, "ridge_momentum": 4.0e-6, "ridge_quality": 1.5e-5,
          "ridge_size": 8.0e-6, "ridge_low_volatility": 1.7e-5}
EXAMPLE = {
    "portfolio_id": "0b8e2f57-3c1e-4c53-9a55-2f3f0c9d8a11", "as_of": "2024-12-31", "prices_date": "2024-12-31",
    "betas_date": "2024-12-31", "currency": "USD", "equity": 250000.0, "headline": "style",
    "models": {
        "market": {**_model(9.1e-5, 1.2e-5, 1.0, {"market_beta": 9.1e-5}, [1.06]), "etfs": ["SPY"]},
        "rates": {**_model(4.0e-6, 9.8e-5, 1.0, {"ir_beta": 4.0e-6}, [-0.21]), "etfs": ["TLT"]},
        "style": {**_model(sum(_STYLE.values()), 1.0e-5, 1.0, _STYLE, [0.24, 0.38, 0.05, 0.17, 0.09, 0.16]),
                  "etfs": ["VTV", "VUG", "MTUM", "QUAL", "IWM", "USMV"]},
    },
    "covariance": {"method": "ewma", "lambda": 0.94, "window_sessions": 252, "min_sessions": 60,
                   "start": "2024-01-03", "end": "2024-12-31"},
    "unpriced_symbols": [],
    "assumptions": list(service.risk.ASSUMPTIONS),
    "computed_at": "2025-01-02T14:30:00+00:00",
}

RESPONSES = {
    200: {"description": "Per model: factor, specific and total daily variance (fractions of equity squared), "
                         "annualised volatility, one-day 95%/99% VaR in USD (positive = loss), coverage and "
                         "per-factor contributions summing to the factor variance.",
          "content": {"application/json": {"example": EXAMPLE}}},
    404: {"description": "No such portfolio, or another user's", "content": {"application/json": {
        "example": {"detail": "portfolio 0b8e2f57-3c1e-4c53-9a55-2f3f0c9d8a11 not found"}}}},
    409: {"description": "Betas stored without residual variance (computed before it was stored), or no betas",
          "content": {"application/json": {"example": {
              "detail": "residual variance not computed for 2024-06-28: backfill (symbol-pipeline backfill "
                        "--start D --end D recomputes a date's betas with it)"}}}},
}


@router.get("/{portfolio_id}/risk", responses=RESPONSES, response_class=Response)
async def get_risk(
    portfolio_id: str, caller: Reader, request: Request,
    as_of: Annotated[AsOfDate | None, Query(description="Holdings, betas and covariance as of this date "
                                                       "(default: the latest betas date)")] = None,
) -> Response:
    """Risk decomposition per factor model (market, rates, style; the headline is style)."""
    text, hit = await run_in_threadpool(service.portfolio_risk_json, engine_of(request), portfolio_id, as_of,
                                        owner_id=caller.id, key_hash=key_of(request))
    return cached_response(text, hit)
