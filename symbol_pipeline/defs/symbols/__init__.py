"""The symbol layer's Dagster definitions, built for the settings definitions.py passes in."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from symbol_pipeline.defs.partitions import trading_date_partitions
from symbol_pipeline.defs.symbols.assets import build_symbol_layer_assets
from symbol_pipeline.defs.symbols.jobs import factor_returns_job, symbol_layer_job
from symbol_pipeline.defs.symbols.requests import run_request_sensor
from symbol_pipeline.defs.symbols.schedules import build_symbol_schedules
from symbol_pipeline.defs.symbols.sensors import build_symbol_sensors
from symbol_pipeline.defs.symbols.window import build_partition_window_job, partition_window_schedule
from symbol_pipeline.services.onboarding import DEFAULT_RECOVERY, RecoveryPolicy
from symbol_pipeline.services.window import WindowRule


def build_symbol_defs(*, first_date: dt.date, schedule_cron: str, schedule_timezone: str,
                      window_rule: WindowRule | None = None,
                      recovery: RecoveryPolicy = DEFAULT_RECOVERY) -> dg.Definitions:
    """The symbol layer over date partitions from `first_date` (the stored window, services.window)."""
    dates = trading_date_partitions(first_date.isoformat())
    return dg.Definitions(
        assets=build_symbol_layer_assets(dates, recovery),
        jobs=[factor_returns_job, symbol_layer_job, build_partition_window_job(window_rule or WindowRule())],
        schedules=[*build_symbol_schedules(schedule_cron, schedule_timezone),
                   partition_window_schedule(schedule_cron, schedule_timezone)],
        sensors=[*build_symbol_sensors(first_date, recovery), run_request_sensor],
    )
