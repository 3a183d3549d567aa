"""Benchmark of the exposure history on PostgreSQL. Prints each figure beside its goal.

    .venv/bin/python benchmarks/bench_history.py                      # full size
    .venv/bin/python benchmarks/bench_history.py --symbols 100 --samples 50 --load-seconds 5   # smoke

1. one portfolio × 252 sessions through the service on a cache miss (and on a hit), p50/p99
   (goal: miss p99 ≤ 50 ms);
2. with --load-seconds > 0: the history endpoint under N concurrent clients (wrk when installed,
   `apt-get install wrk`, else a Python client) (goal: 0 errors, p99 ≤ 200 ms at 100 clients).

Uses its own database (default sp_history_bench, recreated each run) on 127.0.0.1. The market:
`--symbols` symbols × `--sessions` sessions of closes (a few splits) and all twelve betas per
session; `--portfolios` portfolios of `--positions` positions entered over the first year, a
few quantity and equity changes each.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_portfolio import bench_http_path, create_database, percentile, reused

from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.lib.sessions import sessions_ending


def seed(url: str, n_symbols: int, n_sessions: int, n_portfolios: int, n_positions: int,
         end, seed: int = 5) -> tuple[list[str], str]:
    """The market and the portfolios (bulk writes, the service's row shapes). Returns ids and a key."""
    from symbol_pipeline.services import portfolio as svc
    from symbol_pipeline.storage.database import get_engine
    from symbol_pipeline.storage.dialect import bulk_insert
    from symbol_pipeline.storage.portfolio_schema import portfolio_equity, portfolios, position_quantities, positions
    from symbol_pipeline.storage.schema import symbol_factor_exposures, symbol_prices_daily, symbol_universe

    rng = np.random.default_rng(seed)
    engine = get_engine(url)
    days = [d.date() for d in sessions_ending(end, n_sessions)]
    symbols = [f"H{i:04d}" for i in range(n_symbols)]
    closes = 50 * np.cumprod(1 + rng.normal(0, 0.015, (n_sessions, n_symbols)), axis=0)
    split = np.ones((n_sessions, n_symbols))
    split[rng.integers(1, n_sessions, n_symbols // 20), rng.integers(0, n_symbols, n_symbols // 20)] = 2.0
    grid_day, grid_sym = np.repeat(days, n_symbols), np.tile(symbols, n_sessions)
    prices = pd.DataFrame({"symbol": grid_sym, "date": grid_day, "close": closes.ravel(),
                           "split_ratio": split.ravel(), "source": "bench"})
    betas = pd.DataFrame({
        "symbol": np.repeat(grid_sym, len(FACTOR_NAMES)), "date": np.repeat(grid_day, len(FACTOR_NAMES)),
        "factor": np.tile(FACTOR_NAMES, n_sessions * n_symbols),
        "beta": rng.normal(0.5, 0.5, n_sessions * n_symbols * len(FACTOR_NAMES)),
    })
    betas.loc[rng.random(len(betas)) < 0.01, "beta"] = np.nan
    betas = betas.assign(beta_uncapped=betas["beta"], observations=90, method="ols", window=90,
                         min_observations=30, beta_cap=5.0, quality="ok")
    user = svc.create_user(engine, "bench")
    key = svc.issue_api_key(engine, "bench")
    pids = [str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i)) for i in range(n_portfolios)]
    k = n_portfolios * n_positions
    entry = np.array(days)[rng.integers(0, min(252, n_sessions), k)]
    with engine.begin() as conn:
        conn.execute(symbol_universe.insert(), [{"symbol": s, "status": "active"} for s in symbols])
        bulk_insert(conn, symbol_prices_daily, prices)
        bulk_insert(conn, symbol_factor_exposures, betas)
        bulk_insert(conn, portfolios, pd.DataFrame({"id": pids, "owner_id": user.id, "name": "bench",
                                                    "equity": 1e6, "currency": "USD"}))
        bulk_insert(conn, portfolio_equity, pd.DataFrame({
            "portfolio_id": np.repeat(pids, 2), "effective_date": np.tile([days[0], days[-60]], n_portfolios),
            "equity": rng.uniform(5e5, 2e6, 2 * n_portfolios)}))
        qty = np.round(rng.normal(100, 300, k)) + 0.5
        bulk_insert(conn, positions, pd.DataFrame({
            "id": np.arange(1, k + 1), "portfolio_id": np.repeat(pids, n_positions),
            "symbol": np.array(symbols)[rng.integers(0, n_symbols, k)], "quantity": qty, "entry_date": entry,
            "investment_class": "equity"}))
        changed = rng.random(k) < 0.3  # a third of the positions changed once, 100 sessions ago
        bulk_insert(conn, position_quantities, pd.DataFrame({
            "position_id": np.r_[np.arange(1, k + 1), np.flatnonzero(changed) + 1],
            "effective_date": np.r_[entry, np.repeat(days[-100], changed.sum())],
            "quantity": np.r_[qty, qty[changed] * 2]}))
        conn.exec_driver_sql("SELECT setval('positions_id_seq', %s)", (k,))
    # VACUUM as autovacuum would after the bulk load: index-only scans of the covering beta index
    # need the visibility map (a table never vacuumed reads the heap for every beta).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    return pids, key


def bench_service(url: str, pids: list[str], samples: int, end) -> dict:
    from symbol_pipeline.services import portfolio as svc
    from symbol_pipeline.storage.dialect import serving_engine

    engine = serving_engine(url)
    for pid in pids[:3]:  # warm-up: imports, prepared statements, the session calendar
        svc.exposure_history_json(engine, pid, end=end)
    miss, hit = [], []
    for i in range(samples):
        pid = pids[i % len(pids)]
        svc.invalidate_portfolio_cache(engine, pid)
        t = time.perf_counter()
        _, was_hit = svc.exposure_history_json(engine, pid, end=end)
        miss.append(time.perf_counter() - t)
        assert not was_hit
        t = time.perf_counter()
        _, was_hit = svc.exposure_history_json(engine, pid, end=end)
        hit.append(time.perf_counter() - t)
        assert was_hit
    doc = svc.exposure_history(engine, pids[0], end=end)
    engine.dispose()
    return {"miss_p50_ms": percentile(miss, 50), "miss_p99_ms": percentile(miss, 99),
            "hit_p50_ms": percentile(hit, 50), "hit_p99_ms": percentile(hit, 99), "n": samples,
            "sessions": len(doc["sessions"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="sp_history_bench")
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=756, help="sessions of closes and betas")
    parser.add_argument("--portfolios", type=int, default=50)
    parser.add_argument("--positions", type=int, default=30)
    parser.add_argument("--samples", type=int, default=300, help="cache misses measured")
    parser.add_argument("--load-seconds", type=float, default=0, help="HTTP load test length (0: none)")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--load-tool", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    parser.add_argument("--reuse", action="store_true", help="measure the database of an earlier run as it is")
    args = parser.parse_args()

    end = sessions_ending(pd.Timestamp.today().date(), 2)[0].date()  # a completed session
    if args.reuse:
        url = args.admin_url.rsplit("/", 1)[0] + f"/{args.database}"
        pids, key = reused(url)
    else:
        url = create_database(args.admin_url, args.database)
        t = time.perf_counter()
        pids, key = seed(url, args.symbols, args.sessions, args.portfolios, args.positions, end)
        print(f"seeded {args.symbols} symbols × {args.sessions} sessions (closes, splits, 12 betas), "
              f"{args.portfolios} portfolios × {args.positions} positions in {time.perf_counter() - t:.1f} s")
    s = bench_service(url, pids, args.samples, end)
    print(f"[1] exposure history, one portfolio × {s['sessions']} sessions × {args.positions} positions: "
          f"miss p50 {s['miss_p50_ms']:.1f} ms p99 {s['miss_p99_ms']:.1f} ms (goal p99 ≤ 50 ms); "
          f"hit p50 {s['hit_p50_ms']:.2f} ms p99 {s['hit_p99_ms']:.2f} ms (n={s['n']})")
    if args.load_seconds > 0:
        h = bench_http_path(url, key, [f"/api/v1/analytics/portfolio/{p}/factor-exposures/history?end={end}"
                                       for p in pids], args.load_seconds, args.clients, args.workers, args.load_tool,
                            args.server)
        print(f"[2] GET factor-exposures/history, {args.clients} clients × {h['seconds']:.1f} s ({h['tool']}), "
              f"{args.server} × {args.workers}: {h['rps']:.0f} req/s, p50 {h['p50_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms, "
              f"{h['errors']} errors of {h['requests']} (goal 0 errors, p99 ≤ 200 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
