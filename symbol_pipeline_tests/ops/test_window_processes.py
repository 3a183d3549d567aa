"""The window across real processes (issue 17): a code server loaded on one evening, run workers
started on a later one, each process's clock set by libfaketime.

The code server is `dagster code-server start`, which is what `dagster dev` starts for each code
location (its ProxyServerManager) and what deploy/docker-compose.yaml runs; runs go through the
DefaultRunLauncher of both (gRPC `StartRun`, then a spawned `dagster api execute_run`), which
inherits the server's environment. The clock is a file named by FAKETIME_TIMESTAMP_FILE: the test
rewrites it between the server's load and the run, so the worker starts on the later day. SQLite is
`dagster dev`'s default storage, PostgreSQL deploy/'s.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin
from dagster_shared.serdes import serialize_value

from symbol_pipeline.defs.symbols.window import PARTITION_WINDOW_JOB, SCHEDULED_TIME_TAG
from symbol_pipeline.lib import sessions
from symbol_pipeline.lib.factors import REGRESSOR_ETFS
from symbol_pipeline.runs.keys import date_range_tags, range_tags
from symbol_pipeline.runs.submit import register_symbols
from symbol_pipeline.services import window
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline_tests.ops import test_window
from symbol_pipeline_tests.ops.test_window import MONDAY, SESSIONS, SYMBOLS, TUESDAY

deployment = test_window.deployment  # the same two deployments: dagster dev's SQLite, deploy/'s PostgreSQL

FAKETIME_LIB = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
_FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(FAKETIME_LIB is None and not os.environ.get("CI"),
                       reason="libfaketime is not installed (apt-get install faketime; .ci/run installs it)"),
]


def _evening(day: dt.date) -> str:
    """faketime's spec for 22:30 UTC (18:30 New York) of `day`: after that session's close."""
    return f"@{day.isoformat()} 22:30:00"


class Clock:
    """The faked clock of every process started with `env`: a file that the test rewrites."""

    def __init__(self, tmp_path: Path, day: dt.date):
        assert FAKETIME_LIB is not None, "libfaketime is not installed: .ci/run installs it (apt-get install faketime)"
        self.file = tmp_path / "faketime"
        self.set(day)
        self.env = {**os.environ, "LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": str(self.file),
                    "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                    # faketime_site/sitecustomize.py: time.sleep without libfaketime's EINVAL
                    "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent / "faketime_site"), str(REPO)])}

    def set(self, day: dt.date) -> None:
        self.file.write_text(_evening(day) + "\n")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def code_server(deployment, tmp_path) -> Iterator:
    """Start `dagster code-server start -m MODULE` at the clock's day; stopped at teardown.

    Runs are submitted straight to the launcher (DefaultRunCoordinator), as the daemon's queue
    would pass them on: the test needs no daemon, whose schedules would run at the faked clock.
    """
    with open(Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml", "a") as config:
        config.write("run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n")
    started: list[subprocess.Popen] = []

    def start(module: str, clock: Clock) -> int:
        port = _free_port()
        log = open(tmp_path / f"code-server-{port}.log", "w")
        started.append(subprocess.Popen(
            [str(BIN / "dagster"), "code-server", "start", "-m", module, "-h", "127.0.0.1", "-p", str(port),
             "--location-name", "symbol_pipeline"],
            env=clock.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
        _wait_for(lambda: _served_first_date(port), what=f"the code server on port {port} to load",
                  log=tmp_path / f"code-server-{port}.log")
        return port

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for(probe, *, what: str, seconds: float = 180, log: Path | None = None):
    deadline = time.monotonic() + seconds
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value is not None:
                return value
        except Exception as exc:  # the server is still starting
            error = exc
        time.sleep(1)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}: {error!r}\n{tail}")


def _served_first_date(port: int) -> str:
    """The first date partition of `market_beta` in the snapshot the code server serves."""
    origin = GrpcServerCodeLocationOrigin(host="127.0.0.1", port=port, location_name="symbol_pipeline")
    with dg.DagsterInstance.get() as instance, origin.create_location(instance) as location:
        repository = next(iter(location.get_repositories().values()))
        node = next(n for n in repository.get_asset_node_snaps() if n.asset_key == dg.AssetKey("market_beta"))
        partitions = node.partitions.get_partitions_definition()
        return partitions.get_partitions_def_for_dimension("date").get_first_partition_key()


def _launch(port: int, clock: Clock, job: str, tags: dict[str, str], *, first_failure: bool = False) -> dg.DagsterRun:
    """Create and launch a run as the webserver or a sensor would, through the instance's
    DefaultRunLauncher (gRPC StartRun on the code server); wait for it to finish, or with
    `first_failure` for its first failed step attempt (the assets' RetryPolicy would spend minutes
    retrying an error no retry fixes), then terminate it through the launcher."""
    run_id = str(uuid.uuid4())
    subprocess.run(
        [str(BIN / "dagster"), "job", "launch", "-j", job, "--grpc-host", "127.0.0.1", "--grpc-port", str(port),
         "--tags", json.dumps(tags), "--run-id", run_id],
        env=clock.env, cwd=REPO, check=True, capture_output=True, timeout=180,
    )
    with dg.DagsterInstance.get() as instance:
        def probe() -> dg.DagsterRun | None:
            run = _finished(instance, run_id)
            if run is None and first_failure and instance.get_records_for_run(
                    run_id, of_type={dg.DagsterEventType.STEP_UP_FOR_RETRY, dg.DagsterEventType.STEP_FAILURE},
                    limit=1).records:
                instance.run_launcher.terminate(run_id)
                run = instance.get_run_by_id(run_id)
            return run

        try:
            return _wait_for(probe, what=f"run {run_id} of {job}", seconds=300)
        except AssertionError as exc:
            run = instance.get_run_by_id(run_id)
            events = "\n".join(str(e.message)[:300] for e in instance.all_logs(run_id))[-4000:]
            raise AssertionError(f"{exc}\nstatus: {run and run.status}\n{events}") from None


def _finished(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun | None:
    run = instance.get_run_by_id(run_id)
    return run if run is not None and run.status in _FINISHED else None


def _events_text(run: dg.DagsterRun) -> str:
    with dg.DagsterInstance.get() as instance:
        return "\n".join(serialize_value(event) for event in instance.all_logs(run.run_id))


def _register() -> None:
    with dg.DagsterInstance.get() as instance:
        register_symbols(instance, [*REGRESSOR_ETFS, *SYMBOLS])


def _monday_server(code_server, tmp_path: Path, module: str) -> tuple[Clock, int, str]:
    """A code server of `module` loaded on Monday evening, serving Monday's window, with the
    symbols registered: the clock, the server's port and its first date partition."""
    clock = Clock(tmp_path, MONDAY)
    port = code_server(module, clock)
    first = _served_first_date(port)
    assert first == sessions.window_start(MONDAY, SESSIONS).isoformat()
    _register()
    return clock, port, first


def test_under_the_old_rule_a_worker_started_the_next_evening_fails_the_run(deployment, tmp_path, code_server):
    """Main's failure, reproduced through the launcher: each process took its first date from its
    clock, so the run a Monday code server created over its first date fails in a Tuesday worker."""
    if "postgresql" in deployment:
        pytest.skip("the old rule fails the same way on either storage; shown once")
    clock, port, first = _monday_server(code_server, tmp_path, "symbol_pipeline_tests.ops.clock_rule_location")
    clock.set(TUESDAY)
    run = _launch(port, clock, "factor_returns_job", date_range_tags(first, MONDAY.isoformat()), first_failure=True)
    assert run.status != dg.DagsterRunStatus.SUCCESS
    assert "before the partitions definition start time" in _events_text(run)


def test_with_the_stored_window_the_worker_of_the_next_evening_runs_it_and_the_move_reloads_the_server(
        deployment, tmp_path, code_server):
    clock, port, first = _monday_server(code_server, tmp_path, "symbol_pipeline.definitions")

    # Tuesday evening, before any move: the runs the Monday server creates over its first date,
    # as the onboarding sensor creates its history run, succeed in Tuesday's workers.
    clock.set(TUESDAY)
    for job, tags in (("factor_returns_job", date_range_tags(first, MONDAY.isoformat())),
                      ("symbol_layer_job", range_tags(first, MONDAY.isoformat(), SYMBOLS[0], SYMBOLS[0]))):
        run = _launch(port, clock, job, tags)
        assert run.status == dg.DagsterRunStatus.SUCCESS, _events_text(run)[-3000:]
    with dg.DagsterInstance.get() as instance:
        stored = instance.get_materialized_partitions(dg.AssetKey("market_beta"))
    assert f"{first}|{SYMBOLS[0]}" in stored

    # Two sessions later the schedule's move runs in a worker: it stores the new first date and
    # reloads the code server it came from, whose snapshot then serves the moved window.
    later = sessions.session_offset(TUESDAY, 2)
    clock.set(later)
    run = _launch(port, clock, PARTITION_WINDOW_JOB, {SCHEDULED_TIME_TAG: f"{later.isoformat()}T22:30:00+00:00"})
    assert run.status == dg.DagsterRunStatus.SUCCESS, _events_text(run)[-3000:]
    assert "code location: reloaded" in _events_text(run)
    new_first = sessions.window_start(later, SESSIONS)
    assert window.stored_first_date(get_engine(deployment)) == new_first
    _wait_for(lambda: _served_first_date(port) == new_first.isoformat() or None,
              what="the code server to serve the moved window", seconds=120)
    # A run of the moved window, from the reloaded server, in a worker of the same evening.
    run = _launch(port, clock, "factor_returns_job", date_range_tags(new_first.isoformat(), later.isoformat()))
    assert run.status == dg.DagsterRunStatus.SUCCESS, _events_text(run)[-3000:]
