"""bench_days.py's live processes: a webserver on the instance through the lived days (reloaded
after each move, as the move reloads a code server), the partitions page timed in Chromium after
a move and after a symbol add, and the daily run launched by a daemon.

Needs Chromium and playwright for the pages (bench_year._ui_available says what is missing); the
daemon-launched run needs neither.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quickstart import _free_port, _graphql, stop_server, wait_for_server
from bench_year import UI_PAGES, _ui_available

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = "symbol_pipeline.definitions"  # workspace.yaml's python_module, named by its module
RELOAD = """
mutation Reload($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on WorkspaceLocationEntry { locationOrLoadError { __typename } }
    ... on PythonError { message }
  }
}
"""
LAUNCH_RUN = """
mutation LaunchRun($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


class LiveUI:
    """A webserver on `home`'s instance (workspace.yaml: its own code server, as `dagster dev`)."""

    def __init__(self, home: Path, goal) -> None:
        self.home, self.goal = home, goal
        self.pages_missing = _ui_available()
        self.port = _free_port()
        self.web = subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-w", str(REPO / "workspace.yaml"), "-p", str(self.port)],
            cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(home)},
            stdout=open(home / "webserver.log", "a"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_server(self.port, 300)

    def close(self) -> None:
        stop_server(self.web)

    def reload(self) -> float:
        """The code location reloaded (the UI's button; what the move does to a code server)."""
        t0 = time.perf_counter()
        answer = _graphql(self.port, RELOAD, {"name": LOCATION})["reloadRepositoryLocation"]
        if answer.get("__typename") != "WorkspaceLocationEntry":
            raise RuntimeError(f"reload failed: {answer}")
        return time.perf_counter() - t0

    def first_page(self, asset: str, label: str, limit: float) -> None:
        """The asset's partitions page, first load in a new browser (ui_pages.py, one pass)."""
        if self.pages_missing:
            print(f"  ui {label}: skipped, {self.pages_missing}", flush=True)
            return
        out = subprocess.run([sys.executable, str(UI_PAGES), f"http://127.0.0.1:{self.port}", asset, "--repeat", "1"],
                             capture_output=True, text=True, timeout=1800)
        lines = [line for line in out.stdout.splitlines() if line.endswith(" s") and "materialize" not in line]
        if not lines:
            print(f"  ui {label}: no figure ({out.stderr[-500:]})", flush=True)
            return
        for line in lines:
            page, seconds = line.rsplit(":", 1)
            self.goal(f"  ui {label}: {page}", float(seconds.split()[0]), limit)

    def daemon_daily_run(self, defs, instance, day: dt.date) -> None:
        """The daily schedule's run request for `day`, launched as the UI launches a run (queued),
        dequeued and started by `dagster-daemon` in a run worker; timed from launch to success."""
        import dagster as dg

        schedule = defs.resolve_schedule_def("symbol_daily_schedule")
        when = dt.datetime(day.year, day.month, day.day, 21, 0, tzinfo=ZoneInfo("America/New_York"))
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                            repository_def=defs.get_repository_def())
        request = next(iter(schedule.evaluate_tick(context).run_requests or []), None)
        if request is None:
            print(f"  daily run by the daemon: no run request for {day}", flush=True)
            return
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                                  cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(self.home)},
                                  stdout=open(self.home / "daemon.log", "a"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            # Timed from a running daemon, as in production: wait for its run queue's heartbeat.
            deadline = time.monotonic() + 300
            while "QUEUED_RUN_COORDINATOR" not in instance.get_daemon_heartbeats():
                if time.monotonic() > deadline:
                    raise RuntimeError("dagster-daemon did not start in 300 s (daemon.log says why)")
                time.sleep(1)
            params = {"selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__",
                                   "jobName": request.job_name or schedule.job_name},
                      "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in request.tags.items()]}}
            t0 = time.perf_counter()
            answer = _graphql(self.port, LAUNCH_RUN, {"params": params})["launchRun"]
            if answer.get("__typename") != "LaunchRunSuccess":
                raise RuntimeError(f"launch failed: {answer}")
            run_id = answer["run"]["runId"]
            finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
            while (run := instance.get_run_by_id(run_id)).status not in finished:
                time.sleep(1)
            wall = time.perf_counter() - t0
            record = instance.get_run_record_by_id(run_id)
            worker = (record.end_time or 0) - (record.start_time or 0)
            self.goal(f"  daily run {day} launched by the daemon, launch to {run.status.value}", wall, 45)
            print(f"    of which in the run worker (start to end): {worker:.1f} s; queue, daemon and spawn: "
                  f"{wall - worker:.1f} s", flush=True)
        finally:
            stop_server(daemon)
