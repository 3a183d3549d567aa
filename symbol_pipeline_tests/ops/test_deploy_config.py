"""The production instance configurations load: deploy/dagster.yaml for real on PostgreSQL,
deploy/docker/dagster.yaml against Dagster's instance schema (dagster-docker is not installed
here, so its launcher's own fields are checked against a copy of its schema)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config_schema

from symbol_pipeline_tests.databases import pg_database_url

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_production_instance_loads_on_postgres(tmp_path, monkeypatch, fresh_pg_database):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", pg_database_url(fresh_pg_database("sp_ops_deploy")))
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "BatchingPostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        queue = instance.run_coordinator.get_run_queue_config()
        assert queue.max_concurrent_runs == 4
        assert {"key": "symbol_pipeline/run_kind", "value": "daily", "limit": 1} in queue.tag_concurrency_limits
        assert {"key": "symbol_pipeline/run_kind", "value": "portfolio", "limit": 1} in queue.tag_concurrency_limits
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.python_log_level == "INFO"  # backfill and sensor runs print no DEBUG lines
        assert instance.get_runs_count() == 0


def test_batching_env_is_set_in_one_file():
    env = dict(
        line.split("=", 1) for line in (DEPLOY / "dagster.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env == {"DAGSTER_EVENT_BATCH_SIZE": "1000", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    for name in ("code", "webserver", "daemon"):
        assert compose["services"][name]["env_file"] == ["dagster.env"]


def test_the_api_runs_behind_the_header_timeout():
    """Production serves the API through `symbol-pipeline serve` (api/server.py), the one entry
    point with the header timeout, on the same database and instance as the pipeline."""
    api = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())["services"]["api"]
    assert api["command"][:2] == ["symbol-pipeline", "serve"]
    assert api["environment"]["SYMBOL_PIPELINE_DATABASE_URL"].endswith("/symbol_pipeline")


# dagster_docker.DockerRunLauncher.config_type(): `image`, `network` plus the container context.
_DOCKER_LAUNCHER_SCHEMA = {
    "image": dg.Field(dg.StringSource, is_required=False),
    "network": dg.Field(dg.StringSource, is_required=False),
    "networks": dg.Field(dg.Array(dg.StringSource), is_required=False),
    "env_vars": dg.Field([str], is_required=False),
    "container_kwargs": dg.Field(dg.Permissive(), is_required=False),
    "registry": dg.Field(
        {"url": dg.Field(dg.StringSource), "username": dg.Field(dg.StringSource), "password": dg.Field(dg.StringSource)},
        is_required=False,
    ),
}


def test_docker_instance_config_is_valid(monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_URL", pg_database_url("dagster"))
    config = yaml.safe_load((DEPLOY / "docker" / "dagster.yaml").read_text())
    result = process_config(dagster_instance_config_schema(), config)
    assert result.success, result.errors
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    launcher_result = process_config(_DOCKER_LAUNCHER_SCHEMA, launcher["config"])
    assert launcher_result.success, launcher_result.errors
    assert {"DAGSTER_EVENT_BATCH_SIZE", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"} <= set(
        launcher["config"]["env_vars"]
    )
