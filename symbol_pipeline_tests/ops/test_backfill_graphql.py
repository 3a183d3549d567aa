"""A UI backfill, the way the UI sends it: the real webserver and daemon on a PostgreSQL
instance configured by deploy/dagster.yaml, the GraphQL `launchPartitionBackfill` mutation with
`assetSelection` + `partitionNames`, and the stored betas checked against a direct computation."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from symbol_pipeline_tests.conftest import BATCHING_ENV
from symbol_pipeline_tests.databases import pg_database_url

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

def _recent_sessions() -> list[str]:
    """The two latest completed sessions: what an operator backfills after missed days.

    A beta or metric depends on the same date × symbol partition of prices (its window is read
    from storage), so the backfill is exactly these dates (docs/architecture.md, "The asset graph").
    """
    from symbol_pipeline.lib import sessions

    last = sessions.latest_completed_session()
    return [sessions.previous_session(last).isoformat(), last.isoformat()]


DATES = _recent_sessions()
SYMBOLS = ["AAPL", "MSFT", "NVDA"]
ASSETS = ["symbol_prices", "market_beta", "ir_beta", "ridge_factor_betas", "spread_factor_betas", "symbol_daily_metrics"]
# The daemon runs one run per date with all six assets, two at a time (deploy/dagster.yaml);
# generous for a shared 2-core machine.
TIMEOUT_SECONDS = 360

# The mutation as the UI's LaunchAssetChoosePartitionsDialog sends it (dagster_webserver's
# bundled JS): asset keys, multi-partition keys, fromFailure false.
LAUNCH = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
  }
}
"""
STATUS = """
query BackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill { id status numCancelable runs(limit: 20) { runId status } }
    ... on PythonError { message }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


def _wait_for_server(port: int, proc: subprocess.Popen, log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"webserver exited:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(1)
    pytest.fail(f"webserver did not start:\n{log.read_text()[-4000:]}")


@pytest.mark.slow
def test_ui_backfill_through_webserver_and_daemon(tmp_path, monkeypatch, fresh_pg_database):
    dagster_db, data_db = fresh_pg_database("sp_ops_dagster"), fresh_pg_database("sp_ops_data")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        **BATCHING_ENV,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": pg_database_url(dagster_db),
        "SYMBOL_PIPELINE_DATABASE_URL": pg_database_url(data_db),
        "SYMBOL_PIPELINE_PRICE_SOURCE": "synthetic",
        "SYMBOL_PIPELINE_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("SYMBOL_PIPELINE_ALERT_WEBHOOK_URL", None)
    for key in ("DAGSTER_HOME", "DAGSTER_PG_URL", "SYMBOL_PIPELINE_DATABASE_URL", "SYMBOL_PIPELINE_PRICE_SOURCE",
                "SYMBOL_PIPELINE_DATA_DIR", *BATCHING_ENV):
        monkeypatch.setenv(key, env[key])

    import dagster as dg

    with dg.DagsterInstance.get() as instance:  # creates the schema before the two processes race to
        instance.add_dynamic_partitions("symbol", SYMBOLS)

    port = _free_port()
    target = ["-m", "symbol_pipeline.definitions", "-d", str(REPO)]
    web_log, daemon_log = tmp_path / "webserver.log", tmp_path / "daemon.log"
    procs = []
    try:
        with open(web_log, "w") as wl, open(daemon_log, "w") as dl:
            procs.append(subprocess.Popen(
                [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), *target],
                env=env, cwd=tmp_path, stdout=wl, stderr=subprocess.STDOUT,
            ))
            procs.append(subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", *target], env=env, cwd=tmp_path, stdout=dl, stderr=subprocess.STDOUT,
            ))
        deadline = time.monotonic() + TIMEOUT_SECONDS
        _wait_for_server(port, procs[0], web_log, deadline)

        params = {
            "assetSelection": [{"path": [name]} for name in ASSETS],
            "partitionNames": [f"{d}|{s}" for d in DATES for s in SYMBOLS],
            "fromFailure": False,
            "tags": [],
        }
        launched = _graphql(port, LAUNCH, {"backfillParams": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        status = None
        while time.monotonic() < deadline:
            backfill = _graphql(port, STATUS, {"backfillId": backfill_id})["partitionBackfillOrError"]
            status = backfill.get("status")
            if status in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
                break
            time.sleep(2)
        assert status in ("COMPLETED", "COMPLETED_SUCCESS"), (
            f"backfill {status}: {backfill}\n--- daemon ---\n{daemon_log.read_text()[-6000:]}"
        )
        # Single-run backfill policy with same-partition dependencies: one run per date covering
        # the six assets of every selected symbol (dates are fewer than symbols here), never one
        # per symbol or per layer of assets (docs/architecture.md, "Dagster at this scale").
        assert len(backfill["runs"]) == len(DATES), backfill["runs"]
        assert all(r["status"] == "SUCCESS" for r in backfill["runs"])
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()

    _check_stored_betas(pg_database_url(data_db), tmp_path)


def _check_stored_betas(url: str, tmp_path: Path) -> None:
    from symbol_pipeline.config import get_settings
    from symbol_pipeline.lib import sessions
    from symbol_pipeline.lib.factors import FACTOR_NAMES, LONGEST_WINDOW, QUALITY_OK, REGRESSOR_ETFS
    from symbol_pipeline.services import symbol_layer
    from symbol_pipeline.sources.synthetic import SyntheticMarket
    from symbol_pipeline.storage.database import ensure_schema
    from symbol_pipeline.storage.dialect import make_engine
    from symbol_pipeline.storage.schema import symbol_factor_exposures as fx
    from symbol_pipeline.storage.schema import symbol_prices_daily as px

    stored_engine = make_engine(url)
    with stored_engine.connect() as conn:
        rows = conn.execute(
            sa.select(fx.c.symbol, fx.c.date, fx.c.factor, fx.c.beta, fx.c.quality).where(
                fx.c.symbol.in_(SYMBOLS), fx.c.date.in_([dt.date.fromisoformat(d) for d in DATES])
            )
        ).all()
        first = dt.date.fromisoformat(DATES[0])
        before = conn.execute(
            sa.select(px.c.symbol, sa.func.count()).where(px.c.symbol.in_(SYMBOLS), px.c.date < first).group_by(px.c.symbol)
        ).all()
    stored = {(r.symbol, r.date.isoformat(), r.factor): (r.beta, r.quality) for r in rows}
    assert len(stored) == len(SYMBOLS) * len(DATES) * len(FACTOR_NAMES)
    assert all(beta is not None and quality == QUALITY_OK for beta, quality in stored.values()), stored
    # The prices of the window before the range's first date were loaded by the same runs.
    window = sessions.sessions_ending(sessions.previous_session(first), LONGEST_WINDOW)
    assert all(count >= len(window) for _, count in before), before

    # The same betas computed directly, outside Dagster, on a database of their own.
    direct = make_engine(f"sqlite:///{tmp_path / 'direct.sqlite'}")
    ensure_schema(direct)
    days = [dt.date.fromisoformat(d) for d in DATES]
    settings = get_settings()  # the market the runs above fetched from
    market = SyntheticMarket(seed=settings.synthetic_seed, n_symbols=settings.synthetic_universe_size)
    symbol_layer.load_prices(direct, market, [*SYMBOLS, *REGRESSOR_ETFS], days)
    symbol_layer.compute_betas(direct, SYMBOLS, days)
    with direct.connect() as conn:
        expected = conn.execute(sa.select(fx.c.symbol, fx.c.date, fx.c.factor, fx.c.beta)).all()
    for r in expected:
        got = stored[(r.symbol, r.date.isoformat(), r.factor)][0]
        assert np.isclose(got, r.beta, rtol=1e-9, atol=1e-12), (r, got)
    stored_engine.dispose()
    direct.dispose()
