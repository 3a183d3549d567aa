"""Portfolio assets, their job and the sensor that runs it when positions change."""


import time

import dagster as dg

from symbol_pipeline.defs.resources import DatabaseResource
from symbol_pipeline.services import portfolios as service

SYMBOL_BETA_ASSETS = [dg.AssetKey("market_beta"), dg.AssetKey("ir_beta"), dg.AssetKey("ridge_factor_betas"),
                      dg.AssetKey("spread_factor_betas")]


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
    for pid, message in batch.errors.items():
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
    context: dg.AssetExecutionContext, config: PortfolioSelectionConfig, database: DatabaseResource
) -> dg.MaterializeResult:
    """Every stress scenario's P&L per factor model for the same portfolios, stored in the analytics cache."""
    started = time.perf_counter()
    batch = service.compute_portfolio_stress_tests(database.engine(), config.portfolio_ids or None)
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

portfolio_exposures_job = dg.define_asset_job(
    "portfolio_exposures_job",
    selection=dg.AssetSelection.assets(*PORTFOLIO_ASSETS),
    description="Recompute portfolio exposures and stress tests (config portfolio_ids: empty = all).",
)


def run_config_for(portfolio_ids: list[str]) -> dict:
    """The job's run config selecting these portfolios (empty: all) for both assets."""
    selection = {"config": {"portfolio_ids": list(portfolio_ids)}}
    return {"ops": {"portfolio_factor_exposures": selection, "portfolio_stress_tests": selection}}


@dg.sensor(job=portfolio_exposures_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def position_change_sensor(context: dg.SensorEvaluationContext, database: DatabaseResource):
    """One run for every burst of position changes, over just the portfolios that changed."""
    cursor = int(context.cursor or 0)
    changes = service.changes_after(database.engine(), cursor)
    if not changes:
        return dg.SkipReason(f"no portfolio changes after change #{cursor}")
    first, last = changes[0][0], changes[-1][0]
    portfolio_ids = sorted({pid for _, pid, _ in changes})
    context.update_cursor(str(last))
    return dg.RunRequest(
        run_key=f"portfolio-changes-{first}-{last}",
        run_config=run_config_for(portfolio_ids),
        tags={"symbol_pipeline/change_range": f"{first}-{last}", "symbol_pipeline/portfolios": str(len(portfolio_ids))},
    )
