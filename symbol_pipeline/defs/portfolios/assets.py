"""Portfolio assets: exposures from the latest symbol betas, and the stress tests on top of them."""

# No `from __future__ import annotations`: Dagster reads the Config parameter's annotation at
# decoration time, and a string annotation does not resolve to the class.
import time

import dagster as dg

from symbol_pipeline.defs.resources import DatabaseResource, StressScenariosResource
from symbol_pipeline.lib.factors import BETA_GROUPS
from symbol_pipeline.services import portfolio as service

SYMBOL_BETA_ASSETS = [dg.AssetKey(name) for name in BETA_GROUPS]


class PortfolioSelectionConfig(dg.Config):
    """Which portfolios to recompute; empty means all of them."""

    portfolio_ids: list[str] = []


@dg.asset(deps=SYMBOL_BETA_ASSETS, group_name="portfolios", kinds={"python", "sql"})
def portfolio_factor_exposures(
    context: dg.AssetExecutionContext, config: PortfolioSelectionConfig, database: DatabaseResource
) -> dg.MaterializeResult:
    """Factor exposures of every (or each changed) portfolio from the latest symbol betas, and its cache entries."""
    started = time.perf_counter()
    batch = service.compute_portfolio_exposures(database.engine(), config.portfolio_ids or None)
    for message in batch.errors.values():
        context.log.warning(message)
    return dg.MaterializeResult(metadata={
        "portfolios": len(batch.documents) + len(batch.errors),
        "computed": len(batch.documents),
        "errors": len(batch.errors),
        "error_portfolios": dg.MetadataValue.json(dict(list(batch.errors.items())[:50])),
        "scope": "all" if not config.portfolio_ids else "changed",
        "betas_date": str(batch.betas_date),
        "prices_date": str(batch.prices_date),
        "seconds": round(time.perf_counter() - started, 3),
    })


@dg.asset(deps=[portfolio_factor_exposures], group_name="portfolios", kinds={"python", "sql"})
def portfolio_stress_tests(
    context: dg.AssetExecutionContext,
    config: PortfolioSelectionConfig,
    database: DatabaseResource,
    stress_scenarios: StressScenariosResource,
) -> dg.MaterializeResult:
    """Every stress scenario's P&L per factor model for the same portfolios, stored in the analytics cache."""
    started = time.perf_counter()
    batch = service.compute_portfolio_stress_tests(
        database.engine(), config.portfolio_ids or None, scenarios_file=stress_scenarios.extra_file
    )
    if batch.covariance_error:
        context.log.warning(batch.covariance_error)
    return dg.MaterializeResult(metadata={
        "portfolios": batch.portfolios,
        "scenarios": batch.scenarios,
        "calc_date": str(batch.calc_date),
        "covariance_sessions": batch.covariance_sessions,
        "covariance_error": batch.covariance_error or "",
        "errors": len(batch.errors),
        "seconds": round(time.perf_counter() - started, 3),
    })


PORTFOLIO_ASSETS = [portfolio_factor_exposures, portfolio_stress_tests]
