"""A year of history at 10,000 symbols through the pipeline's own runs, then the UI on that instance.

    .venv/bin/python benchmarks/bench_year.py [--symbols 10000] [--sessions 252] [--chunk 21] [--fast]
                                              [--keep DIR] [--reuse DIR] [--skip-ui] [--repeat 2]

PostgreSQL, the production storages (deploy/dagster.yaml's, with the project's event log).

1. History: the partition range is the last `--sessions` completed sessions
   (SYMBOL_PIPELINE_PARTITION_SESSIONS); `--symbols` synthetic symbols and the 8 ETFs are
   registered, and runs.submit.run_symbol_layer materialises the range `--chunk` sessions at a
   time, in-process on the instance, as `symbol-pipeline backfill` does without a daemon. The
   first run loads each symbol's window before the range. Goal: at most 2 hours.
   `--fast`: the faster path the issue allows (same partition status and latest metadata, other
   run records): see fast_history.
2. Status: per asset, the partitions Dagster shows materialised (the status cache the UI reads,
   built here: the time it takes is what a first page load after the run would pay) against
   the partitions the database holds rows for.
3. UI (`dagster-webserver` on that instance; skipped cleanly without Chromium and playwright):
   ../shared/tools/ui_pages.py for each symbol asset (partitions page, overview, Materialize
   dialog; goal 3 s), then once more for `market_beta` after a symbol is added (goal 5 s).
4. The daily schedule's tick, and a "backfill missing partitions" launch (GraphQL
   `launchPartitionBackfill`, the new symbol's missing partitions), each timed (goal 3 s). The
   backfill is cancelled at once: no daemon runs here.

`--keep DIR` keeps the databases and DIR/state.json; `--reuse DIR` skips steps 1-2 and measures
the UI of a kept instance again. Without `--keep` the databases are dropped at the end.
`--assets market_beta` limits what `--fast` writes and the UI measures to one asset: the envelope
of docs/performance.md (partitions page time against partitions per asset) runs it at 1,000 × 252,
10,000 × 21 and 10,000 × 63 with `--fast --chunk 1`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from zoneinfo import ZoneInfo

warnings.filterwarnings("ignore")
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
UI_PAGES = REPO.parent / "shared" / "tools" / "ui_pages.py"
PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/"
SYMBOL_ASSETS = ["symbol_prices", "market_beta", "ir_beta", "ridge_factor_betas", "spread_factor_betas",
                 "symbol_daily_metrics"]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_operations import _admin, _drop_db, _pg_instance  # noqa: E402
from bench_quickstart import LAUNCH, _free_port, _graphql, stop_server, wait_for_server  # noqa: E402

CANCEL = """
mutation Cancel($backfillId: String!) { cancelPartitionBackfill(backfillId: $backfillId) { __typename } }
"""


def _environment(state: dict) -> None:
    os.environ.update({
        "SYMBOL_PIPELINE_DATABASE_URL": PG + state["data_db"],
        "SYMBOL_PIPELINE_PRICE_SOURCE": "synthetic",
        "SYMBOL_PIPELINE_SYNTHETIC_SYMBOLS": str(state["symbols"]),
        "SYMBOL_PIPELINE_PARTITION_SESSIONS": str(state["sessions"]),
        "SYMBOL_PIPELINE_DATA_DIR": str(Path(state["home"]).parent / "data"),
        "DAGSTER_EVENT_BATCH_SIZE": "1000",
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
    })
    # The range is pinned once the history is loaded: a rolling range would move at 16:00 New York
    # and change the partitions definition, which makes Dagster rebuild every status cache.
    if state.get("start"):
        os.environ["SYMBOL_PIPELINE_PARTITIONS_START"] = state["start"]
    else:
        os.environ.pop("SYMBOL_PIPELINE_PARTITIONS_START", None)


def history(state: dict, chunk: int) -> None:
    from symbol_pipeline.config import get_settings
    from symbol_pipeline.definitions import build_definitions
    from symbol_pipeline.lib.factors import REGRESSOR_ETFS
    from symbol_pipeline.runs.submit import register_symbols, run_symbol_layer
    from symbol_pipeline.sources.synthetic import SyntheticMarket
    from symbol_pipeline.storage import universe
    from symbol_pipeline.storage.database import get_engine

    settings = get_settings()
    engine = get_engine(settings.database_url)
    market = SyntheticMarket(seed=7, n_symbols=state["symbols"])
    symbols = [*REGRESSOR_ETFS, *market.universe()]
    with engine.begin() as conn:
        universe.add_symbols(conn, symbols, status=universe.STATUS_ACTIVE)
    instance = _pg_instance(state["dagster_db"], Path(state["home"]))
    register_symbols(instance, symbols)
    defs = build_definitions(settings)
    dates_def = defs.resolve_assets_def("factor_returns").partitions_def
    dates = [dt.date.fromisoformat(k) for k in dates_def.get_partition_keys()]
    state["start"] = dates[0].isoformat()
    print(f"history: {len(dates)} sessions {dates[0]}..{dates[-1]} × {len(symbols):,} symbols, "
          f"{len(SYMBOL_ASSETS)} date × symbol assets = {len(dates) * len(symbols) * len(SYMBOL_ASSETS):,} "
          f"partitions, in runs of {chunk} sessions", flush=True)
    started = time.perf_counter()
    for i in range(0, len(dates), chunk):
        block = dates[i:i + chunk]
        t0 = time.perf_counter()
        result = run_symbol_layer(instance, defs, block[0], block[-1], None)
        print(f"  {block[0]}..{block[-1]}: {time.perf_counter() - t0:.0f} s (ok={result.success}), "
              f"{(time.perf_counter() - started) / 60:.1f} min so far", flush=True)
        if not result.success:
            raise SystemExit(f"run failed: {result.run_ids}")
    wall = time.perf_counter() - started
    print(f"history: {wall / 60:.1f} min wall (goal ≤ 120 min)", flush=True)
    state["history_minutes"] = round(wall / 60, 1)
    instance.dispose()
    engine.dispose()


def fast_history(state: dict, chunk: int) -> None:
    """The faster path of item 5: the same partition status and latest metadata as `history`,
    with different run records. The sessions before the last `chunk` get, per run of `chunk`
    sessions, a SUCCESS run record of each job (no planning, no step events) and one
    materialisation event per (date, symbol) of every symbol asset and per date of
    factor_returns, written by defs/events.write_keys as a step does; then the last `chunk`
    sessions run through the pipeline, as `history` runs them, and their events are the latest.
    The data tables hold what that last run stored (its window of prices and its betas), not the
    earlier sessions' betas: `status` compares with the real path's count instead."""
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
    from dagster._core.utils import make_new_run_id

    from symbol_pipeline.config import get_settings
    from symbol_pipeline.definitions import build_definitions
    from symbol_pipeline.defs.events import write_keys
    from symbol_pipeline.lib.factors import REGRESSOR_ETFS
    from symbol_pipeline.runs.keys import date_range_tags, range_tags
    from symbol_pipeline.runs.submit import FACTOR_RETURNS_JOB, SYMBOL_LAYER_JOB, register_symbols, run_symbol_layer
    from symbol_pipeline.sources.synthetic import SyntheticMarket
    from symbol_pipeline.storage import universe
    from symbol_pipeline.storage.database import get_engine

    settings = get_settings()
    engine = get_engine(settings.database_url)
    market = SyntheticMarket(seed=7, n_symbols=state["symbols"])
    symbols = [*REGRESSOR_ETFS, *market.universe()]
    with engine.begin() as conn:
        universe.add_symbols(conn, symbols, status=universe.STATUS_ACTIVE)
    instance = _pg_instance(state["dagster_db"], Path(state["home"]))
    register_symbols(instance, symbols)
    defs = build_definitions(settings)
    dates = defs.resolve_assets_def("factor_returns").partitions_def.get_partition_keys()
    state["start"] = dates[0]
    order = sorted(symbols)
    print(f"fast history: {len(dates)} sessions {dates[0]}..{dates[-1]} × {len(symbols):,} symbols; the first "
          f"{len(dates) - chunk} written as events of recorded runs, the last {chunk} through the pipeline", flush=True)
    started = time.perf_counter()
    marker = {"written_by": "benchmarks/bench_year.py --fast"}
    for i in range(0, len(dates) - chunk, chunk):
        block = dates[i:min(i + chunk, len(dates) - chunk)]
        t0 = time.perf_counter()
        for job, tags in ((FACTOR_RETURNS_JOB, date_range_tags(block[0], block[-1])),
                          (SYMBOL_LAYER_JOB, range_tags(block[0], block[-1], symbols[0], symbols[-1]))):
            run = instance.add_run(DagsterRun(job_name=job, run_id=make_new_run_id(), status=DagsterRunStatus.SUCCESS,
                                              tags={**tags, "symbol_pipeline/written_by": marker["written_by"]}))
            if job == FACTOR_RETURNS_JOB:
                write_keys(instance, run.run_id, job, "factor_returns", "factor_returns", block, marker)
                continue
            keys = [f"{d}|{s}" for d in block for s in order]
            for asset in state.get("assets", SYMBOL_ASSETS):
                write_keys(instance, run.run_id, job, "symbol_layer", asset, keys, marker)
        print(f"  {block[0]}..{block[-1]}: {time.perf_counter() - t0:.0f} s written, "
              f"{(time.perf_counter() - started) / 60:.1f} min so far", flush=True)
    block = dates[-chunk:]
    t0 = time.perf_counter()
    result = run_symbol_layer(instance, defs, dt.date.fromisoformat(block[0]), dt.date.fromisoformat(block[-1]), None)
    print(f"  {block[0]}..{block[-1]}: {time.perf_counter() - t0:.0f} s through the pipeline (ok={result.success})",
          flush=True)
    if not result.success:
        raise SystemExit(f"run failed: {result.run_ids}")
    wall = time.perf_counter() - started
    print(f"fast history: {wall / 60:.1f} min wall (goal ≤ 120 min)", flush=True)
    state["history_minutes"] = round(wall / 60, 1)
    state["fast"] = True
    instance.dispose()
    engine.dispose()


def status(state: dict) -> None:
    """Dagster's materialised partitions per asset, against the rows the database holds."""
    import dagster as dg
    import sqlalchemy as sa
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

    from symbol_pipeline.config import get_settings
    from symbol_pipeline.definitions import build_definitions
    from symbol_pipeline.lib.factors import BETA_GROUPS

    defs = build_definitions(get_settings())
    instance = _pg_instance(state["dagster_db"], Path(state["home"]))
    dates_def = defs.resolve_assets_def("factor_returns").partitions_def
    keys = dates_def.get_partition_keys()
    first, last = keys[0], keys[-1]
    engine = sa.create_engine(PG + state["data_db"])
    stored = {}
    with engine.connect() as conn:
        def count(sql: str) -> int:
            return int(conn.execute(sa.text(sql), {"a": first, "b": last}).scalar())
        stored["symbol_prices"] = count(
            "SELECT count(*) FROM (SELECT symbol, date FROM symbol_prices_daily WHERE date BETWEEN :a AND :b "
            "UNION SELECT symbol, date FROM symbol_session_gaps WHERE date BETWEEN :a AND :b) k")
        for asset, factors in BETA_GROUPS.items():
            names = ", ".join(f"'{f}'" for f in factors)
            stored[asset] = count(f"SELECT count(DISTINCT (symbol, date)) FROM symbol_factor_exposures "
                                  f"WHERE date BETWEEN :a AND :b AND factor IN ({names})")
        stored["symbol_daily_metrics"] = count(
            "SELECT count(*) FROM symbol_daily_metrics WHERE date BETWEEN :a AND :b")
    engine.dispose()
    against = "stored"
    if state.get("fast"):
        # The fast path leaves only the last run's rows; the real path stored every partition.
        against = "partitions (every one, as the pipeline's own runs leave them)"
        stored = {name: len(keys) * len(instance.get_dynamic_partitions("symbol")) for name in state.get("assets", SYMBOL_ASSETS)}
    for name in state.get("assets", SYMBOL_ASSETS):
        key = dg.AssetKey(name)
        pdef = defs.resolve_assets_def(key).partitions_def
        t0 = time.perf_counter()
        cache = get_and_update_asset_status_cache_value(instance, key, pdef)
        built = time.perf_counter() - t0
        done = cache.deserialize_materialized_partition_subsets(pdef)
        print(f"status {name:22s}: {len(done):>10,} materialised in Dagster, {stored[name]:>10,} {against} "
              f"({'equal' if len(done) == stored[name] else 'DIFFERENT'}); status cache built in {built:.1f} s",
              flush=True)
    instance.dispose()


def _ui_available() -> str | None:
    if not UI_PAGES.exists():
        return f"{UI_PAGES} is not there"
    if not Path("/usr/bin/chromium").exists():
        return "no /usr/bin/chromium (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "no playwright (pip install playwright)"
    return None


def _pages(port: int, asset: str, goal: float, repeat: int = 2) -> None:
    out = subprocess.run([sys.executable, str(UI_PAGES), f"http://127.0.0.1:{port}", asset, "--repeat", str(repeat)],
                         capture_output=True, text=True, timeout=3600)
    for line in (out.stdout + (out.stderr[-800:] if out.returncode else "")).splitlines():
        print(f"  ui {line}" + (f" (goal ≤ {goal:.0f} s)" if line.endswith(" s") else ""), flush=True)


def _dialog(port: int, asset: str, goal: float) -> None:
    """Seconds from clicking "Materialize…" to the launch dialog ready. ui_pages.py waits up to
    10 s for a "Confirm" button first, which these assets' dialog never shows, so its dialog
    figure is 10 s above this one; this waits for whichever comes first."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.goto(f"http://127.0.0.1:{port}/asset-groups", wait_until="networkidle", timeout=600_000)
        try:
            page.get_by_role("button", name="Skip").click(timeout=3_000)
        except Exception:
            pass
        page.goto(f"http://127.0.0.1:{port}/assets/{asset}", wait_until="networkidle", timeout=600_000)
        start = time.perf_counter()
        page.get_by_role("button", name="Materialize…").first.click(timeout=60_000)
        confirm = page.get_by_role("button", name="Confirm")
        page.locator("text=/Launch/").or_(confirm).first.wait_for(timeout=600_000)
        if confirm.count():
            confirm.click()
            page.wait_for_selector("text=/Launch/", timeout=600_000)
        page.wait_for_load_state("networkidle", timeout=600_000)
        print(f"  ui {asset} materialize dialog, without ui_pages.py's 10 s wait for a Confirm button: "
              f"{time.perf_counter() - start:.1f} s (goal ≤ {goal:.0f} s)", flush=True)
        browser.close()


def ui(state: dict, repeat: int) -> None:
    import dagster as dg

    from symbol_pipeline.config import get_settings
    from symbol_pipeline.definitions import build_definitions
    from symbol_pipeline.runs.submit import register_symbols

    missing = _ui_available()
    port = _free_port()
    web = subprocess.Popen([str(BIN / "dagster-webserver"), "-w", str(REPO / "workspace.yaml"), "-p", str(port)],
                           cwd=REPO, env={**os.environ, "DAGSTER_HOME": state["home"]},
                           stdout=open(Path(state["home"]) / "webserver.log", "w"), stderr=subprocess.STDOUT,
                           start_new_session=True)
    try:
        wait_for_server(port, 300)
        if missing:
            print(f"UI pages: skipped, {missing}")
        else:
            for asset in state.get("assets", SYMBOL_ASSETS):
                _pages(port, asset, goal=3, repeat=repeat)
            # ui_pages.py's dialog figures include its 10 s wait for a Confirm button; once without:
            _dialog(port, "market_beta", goal=3)
        instance = _pg_instance(state["dagster_db"], Path(state["home"]))
        new_symbol = f"NEW{uuid.uuid4().hex[:4].upper()}"
        register_symbols(instance, [new_symbol])
        print(f"added symbol {new_symbol}", flush=True)
        if not missing:
            _pages(port, "market_beta", goal=5, repeat=1)
            _dialog(port, "market_beta", goal=5)
        defs = build_definitions(get_settings())
        schedule = defs.resolve_schedule_def("symbol_daily_schedule")
        t0 = time.perf_counter()
        # Its tick on the evening of the range's last session, as the daemon evaluates it then.
        last = dt.date.fromisoformat(defs.resolve_assets_def("factor_returns").partitions_def.get_partition_keys()[-1])
        when = dt.datetime(last.year, last.month, last.day, 21, 0, tzinfo=ZoneInfo("America/New_York"))
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                            repository_def=defs.get_repository_def())
        tick = schedule.evaluate_tick(context)
        print(f"daily schedule tick: {time.perf_counter() - t0:.1f} s, {len(tick.run_requests or [])} run request(s) "
              f"(goal ≤ 3 s)", flush=True)
        dates_def = defs.resolve_assets_def("factor_returns").partitions_def
        names = [f"{d}|{new_symbol}" for d in dates_def.get_partition_keys()]
        params = {"assetSelection": [{"path": [n]} for n in SYMBOL_ASSETS], "partitionNames": names,
                  "fromFailure": False, "tags": []}
        t0 = time.perf_counter()
        launched = _graphql(port, LAUNCH, {"backfillParams": params})["launchPartitionBackfill"]
        print(f"backfill of the missing partitions ({len(names)} keys × {len(SYMBOL_ASSETS)} assets) launched in "
              f"{time.perf_counter() - t0:.1f} s: {launched.get('__typename')} (goal ≤ 3 s)", flush=True)
        if launched.get("backfillId"):
            _graphql(port, CANCEL, {"backfillId": launched["backfillId"]})
        instance.delete_dynamic_partition("symbol", new_symbol)
        instance.dispose()
    finally:
        stop_server(web)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=252)
    parser.add_argument("--chunk", type=int, default=21)
    parser.add_argument("--keep", help="keep the databases; their names go to DIR/state.json")
    parser.add_argument("--reuse", help="a --keep DIR: measure its instance's UI again")
    parser.add_argument("--skip-ui", action="store_true")
    parser.add_argument("--fast", action="store_true",
                        help="the faster path: events of recorded runs for all but the last --chunk sessions")
    parser.add_argument("--repeat", type=int, default=2, help="page loads per asset (ui_pages.py --repeat)")
    parser.add_argument("--assets", default=",".join(SYMBOL_ASSETS),
                        help="the symbol assets --fast writes and the UI measures (the envelope: market_beta)")
    args = parser.parse_args()
    if args.reuse:
        folder = Path(args.reuse)
        state = json.loads((folder / "state.json").read_text())
    else:
        folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sp_year_"))
        folder.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:8]
        state = {"dagster_db": f"sp_year_dagster_{tag}", "data_db": f"sp_year_data_{tag}",
                 "home": str(folder / "home"), "symbols": args.symbols, "sessions": args.sessions,
                 "assets": [a for a in args.assets.split(",") if a]}
        for db in (state["dagster_db"], state["data_db"]):
            _admin(f'CREATE DATABASE "{db}"')
        (folder / "state.json").write_text(json.dumps(state))
    _environment(state)
    try:
        if not args.reuse:
            (fast_history if args.fast else history)(state, args.chunk)
            status(state)
            (folder / "state.json").write_text(json.dumps(state))
        if not args.skip_ui:
            ui(state, args.repeat)
    finally:
        if not args.keep and not args.reuse:
            _drop_db(state["dagster_db"])
            _drop_db(state["data_db"])
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
