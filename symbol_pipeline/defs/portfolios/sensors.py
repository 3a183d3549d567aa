"""The position-change sensor: one run of the portfolio job per burst of changes."""

from __future__ import annotations

import dagster as dg

from symbol_pipeline.defs.portfolios.jobs import portfolio_exposures_job
from symbol_pipeline.defs.resources import DatabaseResource
from symbol_pipeline.runs.submit import portfolio_run_config
from symbol_pipeline.services import portfolio as service


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
        run_config=portfolio_run_config(portfolio_ids),
        tags={"symbol_pipeline/change_range": f"{first}-{last}", "symbol_pipeline/portfolios": str(len(portfolio_ids))},
    )
