"""The portfolio layer's Dagster definitions."""

from __future__ import annotations

import dagster as dg

from symbol_pipeline.defs.portfolios.assets import PORTFOLIO_ASSETS
from symbol_pipeline.defs.portfolios.jobs import portfolio_exposures_job
from symbol_pipeline.defs.portfolios.sensors import position_change_sensor


def build_portfolio_defs() -> dg.Definitions:
    return dg.Definitions(assets=PORTFOLIO_ASSETS, jobs=[portfolio_exposures_job], sensors=[position_change_sensor])
