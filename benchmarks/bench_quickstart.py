"""The quick start, then the UI's "Backfill only failed and missing partitions" over the whole
default range of every symbol asset, as a new user would do them, with the figures beside the
goals of the console issue (quick start ≤ 60 s; backfill ≤ 900 s on 2 cores; nothing missing).

    .venv/bin/python benchmarks/bench_quickstart.py [--keep DIR]

1. In an empty folder holding the repository's dagster.yaml and nothing set: `symbol-pipeline
   run` (wall seconds, peak memory of the process, console lines).
2. `dagster dev` in that folder (webserver and daemon on the same SQLite instance).
3. The missing partitions of the six date × symbol assets, read from the instance's partition
   status (the cache the UI's partitions page reads), sent as the UI's Materialize dialog sends
   them: GraphQL `launchPartitionBackfill` with `assetSelection` + `partitionNames`.
4. The clock stops when the backfill is completed; then the status is read again: missing and
   failed partitions per asset, and whether Dagster's materialised set equals the stored rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SYMBOL_ASSETS = ["symbol_prices", "market_beta", "ir_beta", "ridge_factor_betas", "spread_factor_betas",
                 "symbol_daily_metrics"]
LAUNCH = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
STATUS = """
query BackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    ... on PartitionBackfill { status numPartitions runs(limit: 1000) { runId status } }
    ... on PythonError { message }
  }
}
"""


def _graphql(port: int, query: str, variables: dict) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                     data=json.dumps({"query": query, "variables": variables}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        body = json.loads(response.read())
    if "errors" in body:
        raise RuntimeError(body["errors"])
    return body["data"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(port: int, seconds: float) -> None:
    """Until Dagster's webserver on `port` answers, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
            return
        except OSError:
            time.sleep(1)


def stop_server(process: subprocess.Popen) -> None:
    """SIGINT to the server's process group, SIGKILL after a minute."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def _status(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Per asset (defined, missing, failed), through a fresh process reading the instance."""
    code = f"""
import json, os, sys
os.chdir({str(folder)!r})
import dagster as dg
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from symbol_pipeline.config import get_settings
from symbol_pipeline.definitions import build_definitions
from symbol_pipeline.runs.instance import get_instance
settings = get_settings(); defs = build_definitions(settings); instance = get_instance(settings.data_dir)
out = {{}}
for name in {[*SYMBOL_ASSETS, "factor_returns"]!r}:
    key = dg.AssetKey(name); pdef = defs.resolve_assets_def(key).partitions_def
    defined = set(pdef.get_partition_keys(dynamic_partitions_store=instance))
    cache = get_and_update_asset_status_cache_value(instance, key, pdef)
    done = set(cache.deserialize_materialized_partition_subsets(pdef).get_partition_keys())
    failed = set(cache.deserialize_failed_partition_subsets(pdef).get_partition_keys())
    out[name] = [len(defined), sorted(defined - done), len(failed)]
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=folder, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sp_quickstart_"))
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", folder / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMBOL_PIPELINE_", "DAGSTER_"))}

    started = time.perf_counter()
    run = subprocess.run([str(BIN / "symbol-pipeline"), "run"], cwd=folder, env=env, capture_output=True, text=True)
    quick = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    lines = len((run.stdout + run.stderr).splitlines())
    print(f"quick start: exit {run.returncode}, {quick:.1f} s wall (goal ≤ 60 s), peak {peak_mb:.0f} MB, "
          f"{lines} console lines (goal ≤ 30)")
    before = _status(folder)
    for name, (defined, missing, failed) in before.items():
        print(f"  after the quick start: {name:22s} {defined:6d} partitions, {len(missing):6d} missing, {failed} failed")

    port = _free_port()
    dev = subprocess.Popen([str(BIN / "dagster"), "dev", "-m", "symbol_pipeline.definitions", "-p", str(port)],
                           cwd=folder, env=env, stdout=open(folder / "dev.log", "w"), stderr=subprocess.STDOUT,
                           start_new_session=True)
    try:
        wait_for_server(port, 180)
        names = sorted({key for name in SYMBOL_ASSETS for key in before[name][1]})
        params = {"assetSelection": [{"path": [n]} for n in SYMBOL_ASSETS], "partitionNames": names,
                  "fromFailure": False, "tags": []}
        started = time.perf_counter()
        launched = _graphql(port, LAUNCH, {"backfillParams": params})["launchPartitionBackfill"]
        launch_seconds = time.perf_counter() - started
        if launched.get("__typename") != "LaunchBackfillSuccess":
            print(f"backfill launch failed: {launched}")
            return 1
        print(f"backfill of {len(names)} missing partition keys × {len(SYMBOL_ASSETS)} assets launched in "
              f"{launch_seconds:.1f} s (goal ≤ 3 s at 10,000 symbols; here the quick-start universe)")
        status, backfill = None, {}
        while time.perf_counter() - started < 3600:
            backfill = _graphql(port, STATUS, {"backfillId": launched["backfillId"]})["partitionBackfillOrError"]
            status = backfill.get("status")
            if status in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
                break
            time.sleep(5)
        total = time.perf_counter() - started
        runs = backfill.get("runs") or []
        print(f"backfill: {status} in {total:.0f} s (goal ≤ 900 s), {len(runs)} runs, "
              f"{sum(r['status'] == 'SUCCESS' for r in runs)} succeeded")
    finally:
        stop_server(dev)
    after = _status(folder)
    for name, (defined, missing, failed) in after.items():
        print(f"  after the backfill:    {name:22s} {defined:6d} partitions, {len(missing):6d} missing (goal 0), "
              f"{failed} failed")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
