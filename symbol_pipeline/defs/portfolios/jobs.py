"""The portfolio job: exposures and stress tests for all or some portfolios."""

from __future__ import annotations

import dagster as dg

from symbol_pipeline.defs.portfolios.assets import PORTFOLIO_ASSETS
from symbol_pipeline.runs.submit import PORTFOLIO_JOB

portfolio_exposures_job = dg.define_asset_job(
    PORTFOLIO_JOB,
    selection=dg.AssetSelection.assets(*PORTFOLIO_ASSETS),
    description="Recompute portfolio exposures and stress tests (config portfolio_ids: empty = all).",
    # Two steps, one after the other: a process per step would add two imports of pandas,
    # scikit-learn and Dagster to every run the position-change sensor launches.
    executor_def=dg.in_process_executor,
)

