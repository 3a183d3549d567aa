"""The one place where Definitions is built and the environment picked."""

from __future__ import annotations

import dagster as dg

from symbol_pipeline.config import get_settings
from symbol_pipeline.defs.resources import DatabaseResource, PriceSourceResource
from symbol_pipeline.defs.symbols.assets import SYMBOL_LAYER_ASSETS
from symbol_pipeline.defs.symbols.jobs import factor_returns_job, symbol_layer_job


def build_definitions() -> dg.Definitions:
    settings = get_settings()
    return dg.Definitions(
        assets=[*SYMBOL_LAYER_ASSETS],
        jobs=[factor_returns_job, symbol_layer_job],
        resources={
            "database": DatabaseResource(url=settings.database_url),
            "price_source": PriceSourceResource(spec=settings.price_source),
        },
    )


defs = build_definitions()
