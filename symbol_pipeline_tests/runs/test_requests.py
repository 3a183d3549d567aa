"""Run requests: the row, the daemon check, what a request becomes on the instance, the queue's limits."""

import datetime as dt
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config_schema
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._daemon.types import DaemonHeartbeat

from symbol_pipeline.runs import requests
from symbol_pipeline.runs.keys import REQUEST_ID_TAG, REQUEST_PART_TAG, RUN_KIND_TAG, date_range_tags
from symbol_pipeline.storage import run_requests as store

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DAY = dt.date(2024, 6, 28)


def _beat(instance, *types, age=0.0):
    for name in types:
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time() - age, name, None, None))


def test_a_second_daily_request_for_an_open_date_is_refused(sqlite_env, env_engine):
    first = store.create_request(env_engine, "daily", DAY, DAY, None, "api:admin")
    with pytest.raises(store.OpenRequestError) as refused:
        store.create_request(env_engine, "daily", DAY, DAY, None, "cli")
    assert refused.value.request.id == first
    # Another date, or a backfill over the same date, is not that daily run.
    store.create_request(env_engine, "daily", dt.date(2024, 6, 27), dt.date(2024, 6, 27), None, "cli")
    store.create_request(env_engine, "backfill", DAY, DAY, ["AAPL"], "cli")
    store.update_request(env_engine, first, "succeeded", ["r1", "r2"])
    assert store.get_request(env_engine, first).run_ids == ["r1", "r2"]
    again = store.create_request(env_engine, "daily", DAY, DAY, None, "cli")
    assert again != first


def test_the_daemon_counts_only_with_a_recent_heartbeat():
    with dg.instance_for_test() as instance:
        needed = requests.required_daemons(instance)
        assert "SENSOR" in needed and requests.missing_daemons(instance) == needed
        _beat(instance, *needed, age=300)
        assert not requests.daemon_serving(instance)
        _beat(instance, *needed)
        assert requests.daemon_serving(instance)


def _add_run(instance, job, request_id, part, status, run_id, **extra):
    tags = {REQUEST_ID_TAG: str(request_id), REQUEST_PART_TAG: part, RUN_KIND_TAG: "daily", **extra}
    instance.add_run(dg.DagsterRun(job_name=job, run_id=run_id, status=status, tags=tags))


def test_a_request_becomes_factor_returns_then_the_symbol_layer(sqlite_env, env_engine):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbol", ["SPY", "AAPL", "MSFT"])
        rid = store.create_request(env_engine, "daily", DAY, DAY, None, "cli")
        made = requests.advance_requests(env_engine, instance)
        assert [r.job_name for r in made] == ["factor_returns_job"]
        assert made[0].tags[REQUEST_ID_TAG] == str(rid) and made[0].run_key.startswith("daily:2024-06-28:")
        assert made[0].tags["dagster/asset_partition_range_start"] == "2024-06-28"
        _add_run(instance, "factor_returns_job", rid, "factor_returns", dg.DagsterRunStatus.STARTED, "f1")
        assert requests.advance_requests(env_engine, instance) == []
        assert store.get_request(env_engine, rid).status == "running"
        instance.delete_run("f1")
        _add_run(instance, "factor_returns_job", rid, "factor_returns", dg.DagsterRunStatus.SUCCESS, "f1")
        made = requests.advance_requests(env_engine, instance)
        assert [r.job_name for r in made] == ["symbol_layer_job"]
        assert made[0].tags["dagster/asset_partition_range_start"] == "2024-06-28|SPY"
        assert made[0].tags["dagster/asset_partition_range_end"] == "2024-06-28|MSFT"
        _add_run(instance, "symbol_layer_job", rid, "symbols:0", dg.DagsterRunStatus.SUCCESS, "s1")
        assert requests.advance_requests(env_engine, instance) == []
        row = store.get_request(env_engine, rid)
        assert row.status == "succeeded" and row.run_ids == ["f1", "s1"]


def test_a_failed_run_about_to_be_retried_keeps_the_request_open(sqlite_env, env_engine):
    with dg.instance_for_test() as instance:
        rid = store.create_request(env_engine, "daily", DAY, DAY, None, "cli")
        _add_run(instance, "factor_returns_job", rid, "factor_returns", dg.DagsterRunStatus.FAILURE, "f1",
                 **{"dagster/will_retry": "true"})
        requests.advance_requests(env_engine, instance)
        assert store.get_request(env_engine, rid).status == "running"
        _add_run(instance, "factor_returns_job", rid, "factor_returns", dg.DagsterRunStatus.FAILURE, "f2")
        requests.advance_requests(env_engine, instance)
        row = store.get_request(env_engine, rid)
        assert row.status == "failed" and "f2" in row.message


def test_a_daily_request_needs_a_daemon_and_no_open_run_of_its_date(sqlite_env, env_engine):
    """Domain answers, not HTTP ones: api/errors.py maps them to 503, 202 and 409."""
    with dg.instance_for_test() as instance:
        with pytest.raises(requests.DaemonNotServingError, match="dagster-daemon run"):
            requests.request_daily_batch(env_engine, instance, DAY, "api:admin")
        _beat(instance, *requests.required_daemons(instance))
        requested = requests.request_daily_batch(env_engine, instance, DAY, "api:admin")
        assert requested == requests.DailyBatchRequest(DAY, requested.request_id) and requested.request_id > 0
        with pytest.raises(requests.OpenRequestError) as again:
            requests.request_daily_batch(env_engine, instance, DAY, "api:admin")
        assert again.value.request.id == requested.request_id
        # A daily run the schedule started (no request row) blocks the date too.
        instance.add_run(dg.DagsterRun(job_name="symbol_layer_job", run_id="sched", status=dg.DagsterRunStatus.STARTED,
                                       tags={RUN_KIND_TAG: "daily", **date_range_tags("2024-06-27", "2024-06-27")}))
        with pytest.raises(requests.OpenRequestError) as running:
            requests.request_daily_batch(env_engine, instance, dt.date(2024, 6, 27), "api:admin")
        assert running.value.request.run_ids[-1] == "sched" and running.value.request.id == 0


def _deploy_coordinator() -> dict:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["run_coordinator"]


def test_the_queue_holds_a_second_daily_run_while_the_first_runs():
    """The production coordinator's limits, applied by Dagster's own dequeue step."""
    with dg.instance_for_test(overrides={"run_coordinator": _deploy_coordinator()}) as instance:
        # A queued run must name where its code lives; the dequeue step never loads it here.
        origin = RemoteJobOrigin(RemoteRepositoryOrigin(
            GrpcServerCodeLocationOrigin(host="localhost", port=4266, location_name="symbol_pipeline"),
            "__repository__"), "symbol_layer_job")

        def add(run_id, status, kind):
            instance.add_run(dg.DagsterRun(job_name="symbol_layer_job", run_id=run_id, status=status,
                                           tags={RUN_KIND_TAG: kind}, remote_job_origin=origin))

        add("daily-1", dg.DagsterRunStatus.STARTED, "daily")
        add("daily-2", dg.DagsterRunStatus.QUEUED, "daily")
        add("onb-1", dg.DagsterRunStatus.QUEUED, "onboarding")
        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        dequeued = [r.run_id for r in daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)]
        assert dequeued == ["onb-1"]
        for i in range(3):
            add(f"bf-{i}", dg.DagsterRunStatus.STARTED, "backfill")
        # Four in progress: max_concurrent_runs.
        assert daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None) == []


def test_production_run_monitoring_sets_a_max_runtime(monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://u@h/d")
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert process_config(dagster_instance_config_schema(), config).success
    assert config["run_monitoring"]["enabled"] and config["run_monitoring"]["max_runtime_seconds"] > 0
