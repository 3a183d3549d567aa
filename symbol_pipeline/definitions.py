"""The one place where Definitions is built and the environment picked."""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg
from sqlalchemy.engine import make_url

from symbol_pipeline.config import (
    ALERT_WEBHOOK_ENV,
    DATABASE_URL_ENV,
    Settings,
    apply_dagster_event_settings,
    get_settings,
)
from symbol_pipeline.defs.loggers import console_logger
from symbol_pipeline.defs.portfolios import build_portfolio_defs
from symbol_pipeline.defs.resources import (
    AlertWebhookResource,
    DatabaseResource,
    StressScenariosResource,
    price_source_resource,
)
from symbol_pipeline.defs.symbols import build_symbol_defs
from symbol_pipeline.services import window
from symbol_pipeline.services.onboarding import RecoveryPolicy
from symbol_pipeline.storage.database import get_engine


def _first_date(settings: Settings) -> dt.date:
    rule = settings.window_rule
    if rule.pinned_start is not None:
        return rule.pinned_start
    try:
        engine = get_engine(settings.database_url)
    except Exception as exc:  # unreachable, or a schema upgrade that failed: say what it stops
        raise window.unavailable(sa_url(settings.database_url), exc) from exc
    return window.first_date(engine, rule, by="definitions")


def recovery_policy(settings: Settings) -> RecoveryPolicy:
    """The settings' retries of failed fetches and delisting rule (docs/operations.md, "Symbols"),
    for the sensors and assets here and for `symbol-pipeline onboard`."""
    return RecoveryPolicy(
        retry_attempts=settings.symbol_retry_attempts,
        retry_delay=dt.timedelta(hours=settings.symbol_retry_delay_hours),
        delisted_after_sessions=settings.delisted_after_sessions,
    )


def sa_url(url: str) -> str:
    """`url` with its password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Definitions for `settings` (default: the environment's): partitions, schedules, resources.

    The first date partition is read from the project database (services.window), not computed
    from this process's clock: the code server, the daemon and every run worker build the same date
    dimension until the window move changes it. An unreachable database is an error that says so
    (the code location shows it in the UI, a run worker fails with it): a clock-derived fallback is
    exactly what made processes disagree.
    """
    settings = settings or get_settings()
    first_date = _first_date(settings)
    symbols = build_symbol_defs(
        first_date=first_date,
        window_rule=settings.window_rule,
        schedule_cron=settings.schedule_cron,
        schedule_timezone=settings.schedule_timezone,
        recovery=recovery_policy(settings),
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


# The entry point of every run worker (and of the code server that evaluates sensors): Dagster's
# batching switches are set here, in the process that executes the steps, not by the modules
# below, which read no settings and write no environment.
apply_dagster_event_settings()
defs = build_definitions()
