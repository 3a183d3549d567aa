"""symbol_onboarding_sensor, the success and failure sensors, through their contexts and real runs."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from symbol_pipeline.definitions import build_definitions
from symbol_pipeline.defs.resources import AlertWebhookResource, DatabaseResource
from symbol_pipeline.defs.symbols import sensors
from symbol_pipeline.lib import sessions
from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.runs.keys import QUEUE_IDS_TAG, range_tags
from symbol_pipeline.services import portfolio
from symbol_pipeline.services.onboarding import ONBOARDING_SESSIONS
from symbol_pipeline.storage import onboarding, universe
from symbol_pipeline.storage.schema import pipeline_alerts, symbol_factor_exposures
from symbol_pipeline_tests.conftest import HISTORY_START

NOW = pd.Timestamp("2024-06-14 22:30", tz="UTC")  # Friday, after the close
LATEST = dt.date(2024, 6, 14)


@pytest.fixture
def pinned_clock(monkeypatch):
    monkeypatch.setattr(sensors, "_now", lambda: NOW)


def _sensor(name: str):
    """The sensor as the real Definitions build it."""
    return build_definitions().resolve_sensor_def(name)


def _sensor_context(instance, url, cursor=None):
    return dg.build_sensor_context(instance=instance, cursor=cursor, resources={"database": DatabaseResource(url=url)})


def _queue(engine):
    with engine.begin() as conn:
        universe.enqueue_symbols(conn, ["AAPL", "ZZZZQ"], requested_by="positions")
        universe.enqueue_symbols(conn, ["MSFT"], requested_by="cli")
        universe.enqueue_symbols(conn, ["NVDA"], requested_by="api", priority=5)


def test_onboarding_sensor_then_the_run(ops_env, env_engine, instance, defs, pinned_clock):
    instance.add_dynamic_partitions("symbol", ["SPY", "TLT"])
    _queue(env_engine)

    result = _sensor("symbol_onboarding_sensor")(_sensor_context(instance, ops_env))

    # Highest priority first, then oldest: NVDA, then AAPL, ZZZZQ (queued together), MSFT.
    order = ["NVDA", "AAPL", "ZZZZQ", "MSFT"]
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [order]
    rows = onboarding.queue_rows(env_engine)
    assert {r["symbol"]: r["status"] for r in rows} == dict.fromkeys(order, "processing")
    assert all(r["started_at"] is not None for r in rows)
    assert result.cursor == str(max(r["id"] for r in rows))
    # One block of new keys -> one run for the latest session, one for the history before it.
    latest, history = result.run_requests
    assert latest.tags["dagster/asset_partition_range_start"] == "2024-06-14|NVDA"
    assert latest.tags["dagster/asset_partition_range_end"] == "2024-06-14|MSFT"
    # The history run covers ONBOARDING_SESSIONS sessions, clipped to the first partition.
    first = max(sessions.session_offset(LATEST, -(ONBOARDING_SESSIONS - 1)).isoformat(), HISTORY_START)
    previous = sessions.previous_session(LATEST).isoformat()
    assert history.tags["dagster/asset_partition_range_start"] == f"{first}|NVDA"
    assert history.tags["dagster/asset_partition_range_end"] == f"{previous}|MSFT"
    assert int(latest.tags["dagster/priority"]) > int(history.tags["dagster/priority"])
    assert latest.run_key != history.run_key
    for request in (latest, history):
        assert request.tags["symbol_pipeline/run_kind"] == "onboarding"
    with env_engine.connect() as conn:
        assert universe.symbol_status(conn, "AAPL").status == "pending"

    # Nothing left: the next tick skips and keeps the cursor.
    again = _sensor("symbol_onboarding_sensor")(_sensor_context(instance, ops_env, cursor=result.cursor))
    assert isinstance(again, dg.SkipReason)

    # What the daemon does with the result, then the run itself.
    instance.add_dynamic_partitions("symbol", result.dynamic_partitions_requests[0].partition_keys)
    run = defs.resolve_job_def("symbol_layer_job").execute_in_process(
        instance=instance, tags=latest.tags, raise_on_error=False
    )
    assert run.success

    with env_engine.connect() as conn:
        statuses = {s: universe.symbol_status(conn, s) for s in order}
        betas = pd.DataFrame(
            conn.execute(
                sa.select(symbol_factor_exposures.c.symbol, symbol_factor_exposures.c.factor,
                          symbol_factor_exposures.c.beta)
                .where(symbol_factor_exposures.c.date == LATEST)
            ).all(),
            columns=["symbol", "factor", "beta"],
        )
    for symbol in ("NVDA", "AAPL", "MSFT"):
        assert statuses[symbol].status == "active", statuses[symbol]
        assert statuses[symbol].queue_status == "completed"
        assert statuses[symbol].last_factor_date == LATEST
        mine = betas[betas.symbol == symbol]
        assert sorted(mine.factor) == sorted(FACTOR_NAMES) and mine.beta.notna().all()
    assert statuses["ZZZZQ"].status == "error"
    assert statuses["ZZZZQ"].queue_status == "failed"
    assert "unknown ticker" in statuses["ZZZZQ"].error_message
    assert betas[betas.symbol == "ZZZZQ"].empty

    # The success sensor: nothing left to settle; the refresh is a run over the portfolios holding
    # the onboarded symbols only (one of two portfolios here).
    owner = portfolio.create_user(env_engine, "owner")
    holder = portfolio.create_portfolio(env_engine, owner.id, "holds NVDA", 100_000)["id"]
    other = portfolio.create_portfolio(env_engine, owner.id, "holds KO", 100_000)["id"]
    portfolio.add_position(env_engine, holder, "NVDA", 10)
    portfolio.add_position(env_engine, other, "KO", 10)
    success = instance.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.RUN_SUCCESS), limit=1
    )[0].event_log_entry.dagster_event
    context = dg.build_run_status_sensor_context(
        sensor_name="symbol_layer_success_sensor",
        dagster_event=success,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),
        resources={"database": DatabaseResource(url=ops_env)},
    )
    request = _sensor("symbol_layer_success_sensor")(context)
    assert isinstance(request, dg.RunRequest) and request.job_name == "portfolio_exposures_job"
    ops_config = request.run_config["ops"]
    assert ops_config["portfolio_factor_exposures"]["config"]["portfolio_ids"] == [holder]
    assert ops_config["portfolio_stress_tests"]["config"]["portfolio_ids"] == [holder]  # stress recomputed too
    assert request.run_key == f"portfolio-refresh-after-{run.run_id}"


def test_a_daily_run_refreshes_every_portfolio_and_none_is_a_skip(sqlite_env, env_engine, instance, defs):
    tags = {"symbol_pipeline/run_kind": "daily", **range_tags("2024-06-14", "2024-06-14", "A", "B")}
    instance.add_dynamic_partitions("symbol", ["A", "B"])
    assert sensors.portfolios_to_refresh(env_engine, instance, tags) is None  # all of them
    onboarding_tags = {**tags, "symbol_pipeline/run_kind": "onboarding"}
    assert sensors.portfolios_to_refresh(env_engine, instance, onboarding_tags) == []
    request = sensors.refresh_request("r-1", None)
    assert request.run_config["ops"]["portfolio_factor_exposures"]["config"]["portfolio_ids"] == []
    assert request.tags["dagster/max_retries"] == "2"


def test_a_lost_tick_is_claimed_again(sqlite_env, env_engine, instance, pinned_clock):
    _queue(env_engine)
    first = _sensor("symbol_onboarding_sensor")(_sensor_context(instance, sqlite_env, cursor=None))
    # Dagster never stored that tick: the cursor is still the old one, the rows are `processing`.
    retry = _sensor("symbol_onboarding_sensor")(_sensor_context(instance, sqlite_env, cursor=None))
    assert retry.dynamic_partitions_requests[0].partition_keys == first.dynamic_partitions_requests[0].partition_keys
    assert [r.run_key for r in retry.run_requests] == [r.run_key for r in first.run_requests]
    # Once a tick's cursor is stored, its rows are not taken again; new rows are.
    with env_engine.begin() as conn:
        universe.enqueue_symbols(conn, ["GOOGL"])
    later = _sensor("symbol_onboarding_sensor")(_sensor_context(instance, sqlite_env, cursor=retry.cursor))
    assert later.dynamic_partitions_requests[0].partition_keys == ["GOOGL"]


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()


@dg.op
def _broken():
    raise RuntimeError("price source down")


@dg.job
def _failing_job():
    _broken()


def _failure_context(instance, url, tags=None, webhook_url=None):
    result = _failing_job.execute_in_process(instance=instance, raise_on_error=False, tags=tags)
    assert not result.success
    event = instance.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.RUN_FAILURE), limit=1
    )[0].event_log_entry.dagster_event
    return result.run_id, dg.build_run_status_sensor_context(
        sensor_name="run_failure_sensor",
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id),
        resources={"database": DatabaseResource(url=url), "alert_webhook": AlertWebhookResource(url=webhook_url)},
    ).for_run_failure()


def test_run_failure_records_an_alert_and_posts_it(ops_env, env_engine, instance, webhook):
    url, received = webhook
    run_id, context = _failure_context(instance, ops_env, webhook_url=url)
    _sensor("run_failure_sensor")(context)
    with env_engine.connect() as conn:
        alert = conn.execute(sa.select(pipeline_alerts)).one()
    assert alert.run_id == run_id and alert.job_name == "_failing_job"
    assert alert.webhook_status == "sent 204"
    assert received and received[0]["run_id"] == run_id and received[0]["event"] == "run_failure"


def test_an_unreachable_webhook_is_recorded_not_raised(sqlite_env, env_engine, instance):
    _, context = _failure_context(instance, sqlite_env, webhook_url="http://127.0.0.1:9/nowhere")
    _sensor("run_failure_sensor")(context)
    with env_engine.connect() as conn:
        alert = conn.execute(sa.select(pipeline_alerts)).one()
    assert alert.webhook_status.startswith("error")


def test_a_failed_onboarding_run_fails_its_queue_rows(sqlite_env, env_engine, instance):
    """Rows the run claimed turn `failed` with the reason; their pending symbols turn `error`."""
    with env_engine.begin() as conn:
        universe.enqueue_symbols(conn, ["AAPL", "MSFT"], requested_by="test")
    claimed = onboarding.claim_batch(env_engine, 10)
    aapl = next(r.id for r in claimed if r.symbol == "AAPL")
    _, context = _failure_context(instance, sqlite_env, tags={QUEUE_IDS_TAG: str(aapl)})
    _sensor("run_failure_sensor")(context)
    rows = {r["symbol"]: r for r in onboarding.queue_rows(env_engine)}
    assert rows["AAPL"]["status"] == "failed" and "failed" in rows["AAPL"]["error_message"]
    assert rows["MSFT"]["status"] == "processing"  # not this run's row
    with env_engine.connect() as conn:
        status = universe.symbol_status(conn, "AAPL")
    assert status.status == "error" and status.error_message.startswith("onboarding run")
