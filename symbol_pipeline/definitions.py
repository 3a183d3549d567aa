"""The one place where Definitions is built and the environment picked."""

from __future__ import annotations

import dagster as dg

from symbol_pipeline.config import get_settings
from symbol_pipeline.defs.portfolio_assets import PORTFOLIO_ASSETS, portfolio_exposures_job, position_change_sensor
from symbol_pipeline.defs.resources import DatabaseResource, PriceSourceResource
from symbol_pipeline.defs.symbols.assets import SYMBOL_LAYER_ASSETS
from symbol_pipeline.defs.symbols.jobs import factor_returns_job, symbol_layer_job
from symbol_pipeline.defs.symbols.schedules import SYMBOL_SCHEDULES
from symbol_pipeline.defs.symbols.sensors import SYMBOL_SENSORS


def build_definitions() -> dg.Definitions:
    """Definitions for the current environment: database and price source from the settings."""
    settings = get_settings()
    return dg.Definitions(
        assets=[*SYMBOL_LAYER_ASSETS, *PORTFOLIO_ASSETS],
        jobs=[factor_returns_job, symbol_layer_job, portfolio_exposures_job],
        schedules=SYMBOL_SCHEDULES,
        sensors=[*SYMBOL_SENSORS, position_change_sensor],
        resources={
            "database": DatabaseResource(url=settings.database_url),
            "price_source": PriceSourceResource(spec=settings.price_source),
        },
    )


defs = build_definitions()
