"""Benchmark of the portfolio layer on PostgreSQL. Prints its figures beside their goals.

    .venv/bin/python benchmarks/bench_portfolio.py                       # full size
    .venv/bin/python benchmarks/bench_portfolio.py --portfolios 200 --load-seconds 3 --clients 20   # smoke
    .venv/bin/python benchmarks/bench_portfolio.py --reuse --stages http --server uvicorn,granian \
        --record runs.jsonl --label "what changed"      # one change's effect, beside the earlier rows

1. exposures of every portfolio in one materialisation of `portfolio_factor_exposures`
   (goal: 10,000 portfolios × 30 positions ≤ 5 s);
2. one portfolio through the service, cache miss and hit, p50/p99 (goal ≤ 2 ms / ≤ 30 ms p99);
3. the exposures and risk endpoints under N concurrent clients for S seconds from a separate
   load-generating process, wrk when installed (issue 10 item 5: exposures ≥ 3,000 req/s, p99 ≤ 100 ms;
   risk p99 ≤ 200 ms; 0 errors at 100 clients), as a table: change → req/s, p50, p99, errors.

Uses its own database (default sp_portfolio_bench, recreated each run unless --reuse) on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

SERVER_HOST = "127.0.0.1"
DATE = dt.date(2024, 6, 28)


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q))


def create_database(admin_url: str, name: str) -> str:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def seed(url: str, n_portfolios: int, n_positions: int, n_symbols: int, seed: int = 1) -> tuple[list[str], str]:
    """Symbols with betas and closes, ETF history, one user owning n_portfolios × n_positions. Returns ids, key."""
    from symbol_pipeline.lib.factors import FACTOR_NAMES, REGRESSOR_ETFS
    from symbol_pipeline.lib.sessions import sessions_ending
    from symbol_pipeline.services import portfolio as svc
    from symbol_pipeline.storage.database import get_engine
    from symbol_pipeline.storage.dialect import bulk_insert
    from symbol_pipeline.storage.portfolio_schema import portfolio_equity, portfolios, position_quantities, positions
    from symbol_pipeline.storage.schema import symbol_factor_exposures, symbol_prices_daily, symbol_universe

    rng = np.random.default_rng(seed)
    engine = get_engine(url)
    symbols = [f"S{i:05d}" for i in range(n_symbols)]
    betas = pd.DataFrame({
        "symbol": np.repeat(symbols, len(FACTOR_NAMES)), "date": DATE,
        "factor": np.tile(FACTOR_NAMES, n_symbols), "beta": rng.normal(0.5, 0.5, n_symbols * len(FACTOR_NAMES)),
    })
    betas.loc[rng.random(len(betas)) < 0.01, "beta"] = np.nan  # a few not estimable
    betas = betas.assign(beta_uncapped=betas["beta"], observations=90, method="ols", window=90,
                         min_observations=30, beta_cap=5.0, quality="ok",
                         residual_variance=rng.uniform(1e-4, 9e-4, len(betas)))  # what the risk endpoint reads
    days = sessions_ending(DATE, 253)
    etf = pd.DataFrame([{"symbol": e, "date": d.date(), "close": 100 * float(c), "source": "bench"}
                        for e in REGRESSOR_ETFS
                        for d, c in zip(days, np.cumprod(1 + rng.normal(0, 0.01, len(days))))])
    closes = pd.DataFrame({"symbol": symbols, "date": DATE, "close": rng.uniform(5, 500, n_symbols), "source": "bench"})
    user = svc.create_user(engine, "bench")
    key = svc.issue_api_key(engine, "bench")
    pids = [str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i)) for i in range(n_portfolios)]
    with engine.begin() as conn:
        conn.execute(symbol_universe.insert(), [{"symbol": s, "status": "active"} for s in symbols])
        bulk_insert(conn, symbol_prices_daily, pd.concat([closes, etf], ignore_index=True))
        bulk_insert(conn, symbol_factor_exposures, betas)
        bulk_insert(conn, portfolios, pd.DataFrame(
            {"id": pids, "owner_id": user.id, "name": "bench", "equity": rng.uniform(1e5, 1e7, n_portfolios),
             "currency": "USD"}))
        k = n_portfolios * n_positions
        qty = np.round(rng.normal(100, 300, k)) + 0.5  # never zero; shorts included
        bulk_insert(conn, positions, pd.DataFrame({
            "id": np.arange(1, k + 1), "portfolio_id": np.repeat(pids, n_positions),
            "symbol": np.array(symbols)[rng.integers(0, n_symbols, k)], "quantity": qty, "entry_date": DATE,
            "investment_class": "equity",
        }))
        # The holdings history the service writes beside them: one quantity and one equity row each.
        bulk_insert(conn, position_quantities, pd.DataFrame({"position_id": np.arange(1, k + 1),
                                                             "effective_date": DATE, "quantity": qty}))
        bulk_insert(conn, portfolio_equity, pd.read_sql_query(
            sa.text("SELECT id AS portfolio_id, equity FROM portfolios"), conn).assign(effective_date=DATE))
        conn.exec_driver_sql("SELECT setval('positions_id_seq', %s)", (k,))
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.commit()
    return pids, key


def bench_materialisation(url: str) -> dict:
    import dagster as dg

    from symbol_pipeline.defs.portfolios.assets import portfolio_factor_exposures
    from symbol_pipeline.defs.resources import DatabaseResource
    from symbol_pipeline.runs.submit import portfolio_run_config

    started = time.perf_counter()
    result = dg.materialize([portfolio_factor_exposures], resources={"database": DatabaseResource(url=url)},
                            run_config={"ops": {"portfolio_factor_exposures": portfolio_run_config([])["ops"][
                                "portfolio_factor_exposures"]}})
    wall = time.perf_counter() - started
    meta = result.asset_materializations_for_node("portfolio_factor_exposures")[0].metadata
    return {"wall_s": wall, "asset_compute_s": meta["seconds"].value, "portfolios": meta["portfolios"].value,
            "errors": meta["errors"].value}


def bench_service(url: str, pids: list[str], n: int) -> dict:
    from symbol_pipeline.services import portfolio as svc
    from symbol_pipeline.storage.dialect import serving_engine

    engine = serving_engine(url)  # the API's engine
    miss, hit = [], []
    for pid in pids[:n]:
        svc.invalidate_portfolio_cache(engine, pid)
        t = time.perf_counter()
        _, was_hit = svc.portfolio_factor_exposures_json(engine, pid)
        miss.append(time.perf_counter() - t)
        assert not was_hit
    for i in range(n * 5):
        pid = pids[i % n]
        t = time.perf_counter()
        _, was_hit = svc.portfolio_factor_exposures_json(engine, pid)
        hit.append(time.perf_counter() - t)
        assert was_hit
    return {"miss_p50_ms": percentile(miss, 50), "miss_p99_ms": percentile(miss, 99),
            "hit_p50_ms": percentile(hit, 50), "hit_p99_ms": percentile(hit, 99), "n_miss": len(miss),
            "n_hit": len(hit)}


LOAD_SCRIPT = r"""
import asyncio, json, sys, time
import httpx
base, key, seconds, clients, paths = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
try:
    import uvloop; uvloop.install()
except ImportError:
    pass
lat, errors = [], 0
async def client(i, stop):
    global errors
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10,
                                 limits=httpx.Limits(max_connections=1)) as c:
        j = i
        while time.perf_counter() < stop:
            path = paths[j % len(paths)]; j += clients
            t = time.perf_counter()
            try:
                r = await c.get(path)
                if r.status_code != 200:
                    errors += 1
            except Exception:
                errors += 1
            lat.append(time.perf_counter() - t)
async def main():
    start = time.perf_counter()
    stop = start + seconds
    await asyncio.gather(*(client(i, stop) for i in range(clients)))
    return time.perf_counter() - start
elapsed = asyncio.run(main())
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float('nan')
print(json.dumps({"requests": len(lat), "seconds": elapsed, "rps": len(lat) / elapsed, "p50_ms": p(0.5),
                  "p99_ms": p(0.99), "errors": errors}))
"""


WRK_SCRIPT = r"""
local paths = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
"""


def _wrk_seconds(text: str) -> float:
    """wrk's durations: 812.00us, 3.20ms, 1.05s, 1.00m (a 60 s run), 1.00h."""
    value = float(text.rstrip("umshµ"))
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    return value * next(scale[unit] for unit in ("us", "ms", "s", "m", "h") if text.endswith(unit))


def run_wrk(base: str, key: str, paths: list[str], seconds: float, clients: int, threads: int) -> dict:
    """wrk (C, event loop per thread): the load costs the shared cores far less than a Python client."""
    import re
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % ", ".join(f'"{p}"' for p in paths))
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{int(seconds)}s", "--latency",
                          "--timeout", "10s", "-H", f"Authorization: Bearer {key}", "-s", f.name, base],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    requests, elapsed = int(total.group(1)), _wrk_seconds(total.group(2) + total.group(3))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.MULTILINE))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)  # wrk's own rate: its elapsed time has 3 digits
    return {"requests": requests, "seconds": elapsed, "rps": float(rps.group(1)) if rps else requests / elapsed, "p50_ms": _wrk_seconds(lat["50"]) * 1e3,
            "p99_ms": _wrk_seconds(lat["99"]) * 1e3, "errors": errors, "tool": f"wrk -t{threads}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((SERVER_HOST, 0))
        return s.getsockname()[1]


def bench_http(url: str, key: str, pids: list[str], seconds: float, clients: int, workers: int,
               tool: str = "auto", server: str = "uvicorn", endpoint: str = "factor-exposures") -> dict:
    return bench_http_path(url, key, [f"/api/v1/analytics/portfolio/{p}/{endpoint}" for p in pids], seconds,
                           clients, workers, tool, server)


def server_command(server: str, port: int, workers: int) -> list[str]:
    """The API served the way `symbol-pipeline serve --server SERVER` serves it."""
    target = "symbol_pipeline.api.app:app_from_environment"
    if server == "granian":
        return [sys.executable, "-m", "granian", target, "--factory", "--interface", "asgi", "--host", SERVER_HOST,
                "--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--log-level", "warning",
                "--no-access-log"]
    return [sys.executable, "-m", "uvicorn", target, "--factory", "--host", SERVER_HOST, "--port", str(port),
            "--workers", str(workers), "--log-level", "warning", "--no-access-log", "--loop", "uvloop",
            "--http", "httptools"]


def bench_http_path(url: str, key: str, paths: list[str], seconds: float, clients: int, workers: int,
                    tool: str = "auto", server: str = "uvicorn") -> dict:
    """Serve the API (`server`, `workers` processes) and load it with GETs cycling over `paths`."""
    from symbol_pipeline.storage.database import get_engine

    get_engine(url)  # tables created here, not raced by the server's workers
    port = _free_port()
    env = {**os.environ, "SYMBOL_PIPELINE_DATABASE_URL": url}
    # Its own process group: a server stopped while a worker is still starting (granian) is killed whole.
    server_process = subprocess.Popen(server_command(server, port, workers), env=env, start_new_session=True)
    try:
        import httpx

        base = f"http://{SERVER_HOST}:{port}"
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(f"{base}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        # Warm every worker's pool and the cache for the portfolios the clients ask for.
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c:
            for path in paths:
                c.get(path)
        if tool == "wrk" or (tool == "auto" and shutil.which("wrk")):
            return run_wrk(base, key, paths, seconds, clients, threads=2)
        out = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, base, key, str(seconds), str(clients),
                              json.dumps(paths)], capture_output=True, text=True, check=True)
        return {**json.loads(out.stdout.strip().splitlines()[-1]), "tool": "python httpx"}
    finally:
        server_process.terminate()
        try:
            server_process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server_process.pid, signal.SIGKILL)
            server_process.wait(5)


GOALS = {"factor-exposures": (3000, 100), "risk": (None, 200)}  # req/s at least, p99 ms at most (issue 10 item 5)


def http_row(label: str, endpoint: str, server: str, args, h: dict) -> dict:
    return {"change": label, "endpoint": endpoint, "server": f"{server} ×{args.workers}", "clients": args.clients,
            "seconds": round(h["seconds"], 1), "rps": round(h["rps"]), "p50_ms": round(h["p50_ms"], 1),
            "p99_ms": round(h["p99_ms"], 1), "errors": h["errors"], "requests": h["requests"], "tool": h["tool"],
            "measured": dt.datetime.now().isoformat(timespec="minutes")}


def print_table(rows: list[dict]) -> None:
    """Each measured change beside the goal of its endpoint."""
    print(f"{'change':<44} {'endpoint':<17} {'server':<12} {'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'errors':>6}  goal")
    for r in rows:
        rps_goal, p99_goal = GOALS.get(r["endpoint"], (None, 200))
        goal = (f"≥ {rps_goal:,} req/s, " if rps_goal else "") + f"p99 ≤ {p99_goal} ms, 0 errors"
        met = (r["rps"] >= (rps_goal or 0)) and r["p99_ms"] <= p99_goal and r["errors"] == 0
        print(f"{r['change'][:44]:<44} {r['endpoint']:<17} {r['server']:<12} {r['rps']:>6} {r['p50_ms']:>7.1f} "
              f"{r['p99_ms']:>7.1f} {r['errors']:>6}  {goal} {'met' if met else 'NOT met'} "
              f"({r['clients']} clients × {r['seconds']} s, {r['tool']}, {r['measured']})")


def reused(url: str) -> tuple[list[str], str]:
    """The portfolios of an earlier run's database (sorted as seeded) and a new key of its user."""
    from symbol_pipeline.services import portfolio as svc
    from symbol_pipeline.storage.database import get_engine

    engine = get_engine(url)
    with engine.connect() as conn:
        pids = [str(p) for p in conn.execute(sa.text("SELECT id FROM portfolios ORDER BY id")).scalars()]
    return pids, svc.issue_api_key(engine, "bench")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="sp_portfolio_bench")
    parser.add_argument("--portfolios", type=int, default=10_000)
    parser.add_argument("--positions", type=int, default=30)
    parser.add_argument("--symbols", type=int, default=3_000)
    parser.add_argument("--service-samples", type=int, default=200)
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--load-portfolios", type=int, default=1000, help="portfolios the load clients cycle over")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--server", default="uvicorn", help="granian, uvicorn, or both comma-separated (measured "
                                                            "back to back)")
    parser.add_argument("--endpoints", default="factor-exposures,risk",
                        help="comma-separated: factor-exposures, risk, stress-test")
    parser.add_argument("--load-tool", choices=["auto", "wrk", "httpx"], default="auto",
                        help="load generator: wrk when installed (apt-get install wrk), else Python httpx")
    parser.add_argument("--stages", default="materialise,service,http",
                        help="comma-separated subset of materialise, service, http")
    parser.add_argument("--reuse", action="store_true", help="measure the database of an earlier run as it is")
    parser.add_argument("--label", default="this checkout", help="the change this run measures (table row)")
    parser.add_argument("--record", type=Path, help="JSON lines file: this run's HTTP rows are appended to it "
                                                    "and the table printed is every row in it")
    args = parser.parse_args()
    stages = set(args.stages.split(","))

    url = args.admin_url.rsplit("/", 1)[0] + f"/{args.database}"
    if args.reuse:
        pids, key = reused(url)
    else:
        url = create_database(args.admin_url, args.database)
        t = time.perf_counter()
        pids, key = seed(url, args.portfolios, args.positions, args.symbols)
        print(f"seeded {args.portfolios} portfolios × {args.positions} positions over {args.symbols} symbols "
              f"in {time.perf_counter() - t:.1f} s")

    if "materialise" in stages:
        m = bench_materialisation(url)
        print(f"[1] materialisation of portfolio_factor_exposures: {m['portfolios']} portfolios, "
              f"compute+write {m['asset_compute_s']:.2f} s, dg.materialize wall {m['wall_s']:.2f} s "
              f"(goal ≤ 5 s), errors {m['errors']}")
        m2 = bench_materialisation(url)
        print(f"    second run: compute+write {m2['asset_compute_s']:.2f} s, wall {m2['wall_s']:.2f} s")

    if "service" in stages:
        s = bench_service(url, pids, min(args.service_samples, len(pids)))
        print(f"[2] service, one portfolio of {args.positions} positions: miss p50 {s['miss_p50_ms']:.2f} ms "
              f"p99 {s['miss_p99_ms']:.2f} ms (n={s['n_miss']}); hit p50 {s['hit_p50_ms']:.2f} ms "
              f"p99 {s['hit_p99_ms']:.2f} ms (n={s['n_hit']}) (goal ≤ 2 ms / ≤ 30 ms p99)")

    if "http" in stages:
        rows = []
        for endpoint in args.endpoints.split(","):
            for server in args.server.split(","):
                h = bench_http(url, key, pids[: args.load_portfolios], args.load_seconds, args.clients, args.workers,
                               args.load_tool, server, endpoint)
                rows.append(http_row(args.label, endpoint, server, args, h))
                print(f"[3] GET {endpoint}, {args.clients} clients × {h['seconds']:.1f} s ({h['tool']}), {server} × "
                      f"{args.workers} worker(s): {h['rps']:.0f} req/s, p50 {h['p50_ms']:.1f} ms, p99 "
                      f"{h['p99_ms']:.1f} ms, {h['errors']} errors of {h['requests']}", flush=True)
        if args.record:
            with args.record.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
            rows = [json.loads(line) for line in args.record.read_text().splitlines() if line.strip()]
        print("\nHTTP under load, each change measured by this script (--record keeps the rows of earlier runs):")
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
