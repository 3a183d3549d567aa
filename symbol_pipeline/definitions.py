"""The one place where Definitions is built and the environment picked."""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

from symbol_pipeline.config import ALERT_WEBHOOK_ENV, DATABASE_URL_ENV, Settings, get_settings
from symbol_pipeline.defs.loggers import console_logger
from symbol_pipeline.defs.portfolios import build_portfolio_defs
from symbol_pipeline.defs.resources import (
    AlertWebhookResource,
    DatabaseResource,
    StressScenariosResource,
    price_source_resource,
)
from symbol_pipeline.defs.symbols import build_symbol_defs
from symbol_pipeline.services.onboarding import RecoveryPolicy


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Definitions for `settings` (default: the environment's): partitions, schedules, resources."""
    settings = settings or get_settings()
    symbols = build_symbol_defs(
        partitions_start=settings.partitions_start,
        schedule_cron=settings.schedule_cron,
        schedule_timezone=settings.schedule_timezone,
        recovery=RecoveryPolicy(
            retry_attempts=settings.symbol_retry_attempts,
            retry_delay=dt.timedelta(hours=settings.symbol_retry_delay_hours),
            delisted_after_sessions=settings.delisted_after_sessions,
        ),
    )
    resources = dg.Definitions(
        loggers={"console": console_logger},
        resources={
            # A URL from the environment may hold a password: Dagster resolves the EnvVar at run
            # time and shows only its name in the UI and GraphQL. The SQLite default holds none.
            "database": DatabaseResource(
                url=dg.EnvVar(DATABASE_URL_ENV) if os.environ.get(DATABASE_URL_ENV) else settings.database_url
            ),
            "price_source": price_source_resource(
                settings.price_source,
                synthetic_seed=settings.synthetic_seed,
                synthetic_universe_size=settings.synthetic_universe_size,
            ),
            "stress_scenarios": StressScenariosResource(extra_file=settings.scenarios_file),
            "alert_webhook": AlertWebhookResource(
                url=dg.EnvVar(ALERT_WEBHOOK_ENV) if settings.alert_webhook_url else None
            ),
        },
    )
    return dg.Definitions.merge(symbols, build_portfolio_defs(), resources)


defs = build_definitions()
