"""Benchmark of the portfolio layer on PostgreSQL. Prints its figures.

    .venv/bin/python benchmarks/bench_portfolio.py                       # full size
    .venv/bin/python benchmarks/bench_portfolio.py --portfolios 200 --load-seconds 3 --clients 20   # smoke

1. exposures of every portfolio in one materialisation of `portfolio_factor_exposures`
   (goal: 10,000 portfolios × 30 positions ≤ 5 s);
2. one portfolio through the service, cache miss and hit, p50/p99 (goal ≤ 2 ms / ≤ 30 ms p99);
3. the exposures endpoint under N concurrent clients for S seconds from a separate
   load-generating process (goal ≥ 1,000 req/s, p99 ≤ 100 ms, 0 errors).

Uses its own database (default sp_portfolio_bench, recreated each run) on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

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
    from symbol_pipeline.storage.portfolio_schema import portfolios, positions
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
                         min_observations=30, beta_cap=5.0, quality="ok")
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
        bulk_insert(conn, positions, pd.DataFrame({
            "portfolio_id": np.repeat(pids, n_positions),
            "symbol": np.array(symbols)[rng.integers(0, n_symbols, k)],
            "quantity": np.round(rng.normal(100, 300, k)) + 0.5,  # never zero; shorts included
            "investment_class": "equity",
        }))
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
base, key, seconds, clients, pids = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
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
            pid = pids[j % len(pids)]; j += clients
            t = time.perf_counter()
            try:
                r = await c.get(f"/api/v1/analytics/portfolio/{pid}/factor-exposures")
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
local pids = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/analytics/portfolio/" .. pids[(n %% #pids) + 1] .. "/factor-exposures")
end
"""


def _wrk_seconds(text: str) -> float:
    value = float(text.rstrip("umsµ"))
    return value / 1e6 if text.endswith("us") else value / 1e3 if text.endswith("ms") else value


def run_wrk(base: str, key: str, pids: list[str], seconds: float, clients: int, threads: int) -> dict:
    """wrk (C, event loop per thread): the load costs the shared cores far less than a Python client."""
    import re
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % ", ".join(f'"{p}"' for p in pids))
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
    return {"requests": requests, "seconds": elapsed, "rps": requests / elapsed, "p50_ms": _wrk_seconds(lat["50"]) * 1e3,
            "p99_ms": _wrk_seconds(lat["99"]) * 1e3, "errors": errors, "tool": f"wrk -t{threads}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((SERVER_HOST, 0))
        return s.getsockname()[1]


def bench_http(url: str, key: str, pids: list[str], seconds: float, clients: int, workers: int,
               tool: str = "auto") -> dict:
    from symbol_pipeline.storage.database import get_engine

    get_engine(url)  # tables created here, not raced by the server's workers
    port = _free_port()
    env = {**os.environ, "SYMBOL_PIPELINE_DATABASE_URL": url}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "symbol_pipeline.api.app:app_from_environment", "--factory", "--host", SERVER_HOST,
         "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log",
         "--loop", "uvloop", "--http", "httptools"],
        env=env,
    )
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
            for pid in pids:
                c.get(f"/api/v1/analytics/portfolio/{pid}/factor-exposures")
        if tool == "wrk" or (tool == "auto" and shutil.which("wrk")):
            return run_wrk(base, key, pids, seconds, clients, threads=2)
        out = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, base, key, str(seconds), str(clients),
                              json.dumps(pids)], capture_output=True, text=True, check=True)
        return {**json.loads(out.stdout.strip().splitlines()[-1]), "tool": "python httpx"}
    finally:
        server.terminate()
        server.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="sp_portfolio_bench")
    parser.add_argument("--portfolios", type=int, default=10_000)
    parser.add_argument("--positions", type=int, default=30)
    parser.add_argument("--symbols", type=int, default=3_000)
    parser.add_argument("--service-samples", type=int, default=200)
    parser.add_argument("--load-seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--load-portfolios", type=int, default=1000, help="portfolios the load clients cycle over")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--load-tool", choices=["auto", "wrk", "httpx"], default="auto",
                        help="load generator: wrk when installed (apt-get install wrk), else Python httpx")
    args = parser.parse_args()

    url = create_database(args.admin_url, args.database)
    t = time.perf_counter()
    pids, key = seed(url, args.portfolios, args.positions, args.symbols)
    print(f"seeded {args.portfolios} portfolios × {args.positions} positions over {args.symbols} symbols "
          f"in {time.perf_counter() - t:.1f} s")

    m = bench_materialisation(url)
    print(f"[1] materialisation of portfolio_factor_exposures: {m['portfolios']} portfolios, "
          f"compute+write {m['asset_compute_s']:.2f} s, dg.materialize wall {m['wall_s']:.2f} s "
          f"(goal ≤ 5 s), errors {m['errors']}")
    m2 = bench_materialisation(url)
    print(f"    second run: compute+write {m2['asset_compute_s']:.2f} s, wall {m2['wall_s']:.2f} s")

    s = bench_service(url, pids, min(args.service_samples, len(pids)))
    print(f"[2] service, one portfolio of {args.positions} positions: miss p50 {s['miss_p50_ms']:.2f} ms "
          f"p99 {s['miss_p99_ms']:.2f} ms (n={s['n_miss']}); hit p50 {s['hit_p50_ms']:.2f} ms "
          f"p99 {s['hit_p99_ms']:.2f} ms (n={s['n_hit']}) (goal ≤ 2 ms / ≤ 30 ms p99)")

    h = bench_http(url, key, pids[: args.load_portfolios], args.load_seconds, args.clients, args.workers,
                   args.load_tool)
    print(f"[3] GET factor-exposures, {args.clients} clients × {h['seconds']:.1f} s ({h['tool']}), {args.workers} server "
          f"worker(s): {h['rps']:.0f} req/s, p50 {h['p50_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms, "
          f"{h['errors']} errors of {h['requests']} (goal ≥ 1,000 req/s, p99 ≤ 100 ms, 0 errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
