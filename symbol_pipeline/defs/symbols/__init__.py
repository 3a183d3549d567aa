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
from symbol_pipeline.services.onboarding import DEFAULT_RECOVERY, RecoveryPolicy


def build_symbol_defs(*, partitions_start: str, schedule_cron: str, schedule_timezone: str,
                      recovery: RecoveryPolicy = DEFAULT_RECOVERY) -> dg.Definitions:
    dates = trading_date_partitions(partitions_start)
    return dg.Definitions(
        assets=build_symbol_layer_assets(dates, recovery),
        jobs=[factor_returns_job, symbol_layer_job],
        schedules=build_symbol_schedules(schedule_cron, schedule_timezone),
        sensors=[*build_symbol_sensors(dt.date.fromisoformat(dates.get_first_partition_key()), recovery),
                 run_request_sensor],
    )
