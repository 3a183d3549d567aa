"""symbol_daily_schedule: one run over the session × every symbol key, nothing on holidays."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from symbol_pipeline.definitions import build_definitions
from symbol_pipeline.defs.symbols.schedules import build_symbol_schedules
from symbol_pipeline.runs.keys import RUN_KIND_TAG

symbol_daily_schedule, factor_returns_daily_schedule = build_symbol_schedules("0 21 * * 1-5", "America/New_York")

NY = ZoneInfo("America/New_York")
KEYS = ["SPY", "TLT", "AAPL", "DELISTED1", "MSFT"]


def _tick(instance, day: dt.date, schedule=symbol_daily_schedule):
    when = dt.datetime(day.year, day.month, day.day, 21, 0, tzinfo=NY)
    repository = build_definitions().get_repository_def()
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=repository)
    return schedule.evaluate_tick(context)


def test_schedules_follow_the_settings(monkeypatch):
    defaults = build_definitions()
    assert defaults.resolve_schedule_def("symbol_daily_schedule").cron_schedule == "0 21 * * 1-5"
    assert defaults.resolve_schedule_def("symbol_daily_schedule").execution_timezone == "America/New_York"
    monkeypatch.setenv("SYMBOL_PIPELINE_SCHEDULE_CRON", "30 22 * * 1-5")
    monkeypatch.setenv("SYMBOL_PIPELINE_SCHEDULE_TIMEZONE", "Europe/London")
    rebuilt = build_definitions()
    for name, job in (("symbol_daily_schedule", "symbol_layer_job"), ("factor_returns_daily_schedule", "factor_returns_job")):
        schedule = rebuilt.resolve_schedule_def(name)
        assert schedule.cron_schedule == "30 22 * * 1-5"
        assert schedule.execution_timezone == "Europe/London"
        assert schedule.job_name == job


def test_trading_day_makes_one_run_over_the_whole_universe(instance):
    instance.add_dynamic_partitions("symbol", KEYS)
    result = _tick(instance, dt.date(2024, 3, 15))  # a Friday session
    assert result.skip_message is None
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.run_key == "2024-03-15"
    assert request.tags["dagster/asset_partition_range_start"] == "2024-03-15|SPY"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-03-15|MSFT"
    assert request.tags[RUN_KIND_TAG] == "daily"
    assert request.partition_key is None

    etf = _tick(instance, dt.date(2024, 3, 15), factor_returns_daily_schedule)
    assert [r.partition_key for r in etf.run_requests] == ["2024-03-15"]


def test_the_range_resolves_to_every_key_of_that_date(instance, defs):
    instance.add_dynamic_partitions("symbol", KEYS)
    request = _tick(instance, dt.date(2024, 3, 15)).run_requests[0]
    job = defs.resolve_job_def("symbol_layer_job")
    partitions = job.partitions_def
    keys = partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange(
            request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]
        ),
        dynamic_partitions_store=instance,
    )
    assert sorted(keys) == sorted(f"2024-03-15|{s}" for s in KEYS)


def test_holidays_and_weekends_make_no_run(instance):
    instance.add_dynamic_partitions("symbol", KEYS)
    for day in (dt.date(2024, 7, 4), dt.date(2024, 3, 29), dt.date(2024, 12, 25)):  # weekday holidays
        result = _tick(instance, day)
        assert result.run_requests == [] and "not an NYSE trading session" in result.skip_message
        assert _tick(instance, day, factor_returns_daily_schedule).run_requests == []


def test_empty_universe_skips(instance):
    result = _tick(instance, dt.date(2024, 3, 15))
    assert result.run_requests == [] and "empty" in result.skip_message
