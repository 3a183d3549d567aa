"""run_request_sensor: the runs the CLI and the HTTP API ask for, started by the daemon."""

from __future__ import annotations

import dagster as dg

from symbol_pipeline.defs.resources import DatabaseResource
from symbol_pipeline.defs.symbols.jobs import factor_returns_job, symbol_layer_job
from symbol_pipeline.runs.requests import advance_requests


@dg.sensor(
    name="run_request_sensor",
    jobs=[factor_returns_job, symbol_layer_job],
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rows of pipeline_run_requests (CLI, admin API): factor_returns, then the symbol layer.",
)
def run_request_sensor(context: dg.SensorEvaluationContext, database: DatabaseResource) -> dg.SensorResult | dg.SkipReason:
    """No cursor: each request's state is read from its runs on the instance, and run keys keep
    a request made twice (a tick whose result was lost) from starting a second run."""
    requests = advance_requests(database.engine(), context.instance)
    if not requests:
        return dg.SkipReason("no run requests waiting")
    context.log.info(f"{len(requests)} run(s) for request(s) {sorted({r.tags['symbol_pipeline/request_id'] for r in requests})}")
    return dg.SensorResult(run_requests=requests)
