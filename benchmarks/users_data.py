"""The data of bench_users.py: users, keys, portfolios, closes and betas written directly (COPY), the
same database found again (--reuse), and the pre-warm that caches what a row will read."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid

import numpy as np
import pandas as pd
import sqlalchemy as sa
import users_load


def user_key(i: int) -> str:
    """User i's API key, derived from i so that --reuse can send it again (only its hash is stored)."""
    return "sp_" + hashlib.sha256(f"bench_users {i}".encode()).hexdigest()[:43]


def reused(url: str, n_positions: int) -> list[users_load.SimUser]:
    """The users of an earlier run's database, as seeded (user i owns one portfolio and its positions)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        owned = conn.execute(sa.text("SELECT id::text, owner_id FROM portfolios ORDER BY owner_id")).all()
        held = pd.read_sql_query(sa.text("SELECT id, portfolio_id::text AS pid FROM positions ORDER BY id"), conn)
    engine.dispose()
    by_pid = held.groupby("pid")["id"].apply(tuple).to_dict()
    return [users_load.SimUser(user_key(owner - 1), pid, by_pid[pid]) for pid, owner in owned]


CACHE_TYPES = {"exposures": "factor_exposures", "risk": "risk", "stress": "stress_test", "history": "exposure_history"}


_engines: dict = {}


def _warm_one(job: tuple[str, str, str, str]) -> None:
    from symbol_pipeline.storage.dialect import serving_engine

    url, kind, pid, end = job
    engine = _engines.get(url) or _engines.setdefault(url, serving_engine(url))  # one pool per process
    for attempt in range(10):  # the server's pools and other clients may hold every connection a moment
        try:
            return _warm_call(engine, kind, pid, end)
        except sa.exc.OperationalError:
            if attempt == 9:
                raise
            time.sleep(1 + attempt)


def _warm_call(engine, kind: str, pid: str, end: str) -> None:
    from symbol_pipeline.services import portfolio as svc

    {"exposures": lambda: svc.portfolio_factor_exposures_json(engine, pid),
     "risk": lambda: svc.portfolio_risk_json(engine, pid),
     "stress": lambda: svc.run_stress_test(engine, pid),
     "history": lambda: svc.exposure_history_json(engine, pid, end=dt.date.fromisoformat(end))}[kind]()


def prewarm(url: str, users: list[users_load.SimUser], end: str, rate: float, seconds: float, seed: int,
            processes: int) -> tuple[int, float]:
    """Cache every document the row's schedule reads that is not cached yet, through the service (the
    API's own functions) in `processes` processes: the measured row then meets the steady state of a
    day, where a miss follows a change. Returns (documents computed, seconds)."""
    import multiprocessing

    _, who, kinds = users_load.schedule(rate, seconds, len(users), seed)
    wanted = {(users[u].portfolio_id, k) for u, k in zip(who.tolist(), kinds.tolist()) if k in CACHE_TYPES}
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        have = {(str(p), t) for p, t in conn.execute(sa.text(
            "SELECT portfolio_id, cache_type FROM portfolio_analytics_cache WHERE valid_until > now()"))}
    engine.dispose()
    jobs = sorted((url, k, pid, end) for pid, k in wanted if (pid, CACHE_TYPES[k]) not in have)
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_warm_one, jobs, chunksize=64)
    return len(jobs), time.perf_counter() - started


def seed(url: str, n_users: int, n_positions: int, n_symbols: int, n_sessions: int, end: dt.date,
         rng_seed: int = 19) -> list[users_load.SimUser]:
    """Users, keys, portfolios, positions, closes and betas by COPY (the service's row shapes)."""
    from symbol_pipeline.lib.factors import FACTOR_NAMES, REGRESSOR_ETFS
    from symbol_pipeline.lib.sessions import sessions_ending
    from symbol_pipeline.storage.database import get_engine
    from symbol_pipeline.storage.dialect import bulk_insert
    from symbol_pipeline.storage.portfolio_schema import (
        api_keys,
        portfolio_equity,
        portfolios,
        position_quantities,
        positions,
        users,
    )
    from symbol_pipeline.storage.schema import symbol_factor_exposures, symbol_prices_daily, symbol_universe

    rng = np.random.default_rng(rng_seed)
    engine = get_engine(url)
    # Closes over at least the risk model's 252-session covariance window; betas over the history's.
    close_days = [d.date() for d in sessions_ending(end, max(n_sessions, 253))]
    beta_days = close_days[-n_sessions:]
    symbols = [f"U{i:05d}" for i in range(n_symbols)]
    every = [*symbols, *REGRESSOR_ETFS]
    keys = [user_key(i) for i in range(n_users)]
    user_ids = np.arange(1, n_users + 1)
    pids = [str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i)) for i in range(n_users)]
    k = n_users * n_positions
    qty = np.round(rng.normal(100, 300, k)) + 0.5  # never zero; shorts included
    equity = rng.uniform(1e5, 1e7, n_users)
    with engine.begin() as conn:
        conn.execute(symbol_universe.insert(), [{"symbol": s, "status": "active"} for s in symbols])
        bulk_insert(conn, users, pd.DataFrame({"id": user_ids, "name": [f"user{i:05d}" for i in user_ids],
                                               "is_admin": False}))
        bulk_insert(conn, api_keys, pd.DataFrame({
            "user_id": user_ids, "key_hash": [hashlib.sha256(key.encode()).hexdigest() for key in keys],
            "key_prefix": [key[:11] for key in keys]}))
        closes = 50 * np.cumprod(1 + rng.normal(0.0003, 0.015, (len(close_days), len(every))), axis=0)
        bulk_insert(conn, symbol_prices_daily, pd.DataFrame({
            "symbol": np.tile(every, len(close_days)), "date": np.repeat(close_days, len(every)),
            "close": closes.ravel(), "source": "bench"}))
        n_f = len(FACTOR_NAMES)
        for chunk in range(0, len(beta_days), 21):  # 21 sessions a COPY: a bounded frame at 3,000 symbols
            days = beta_days[chunk: chunk + 21]
            rows = len(days) * n_symbols * n_f
            beta = rng.normal(0.5, 0.5, rows)
            bulk_insert(conn, symbol_factor_exposures, pd.DataFrame({
                "symbol": np.tile(np.repeat(symbols, n_f), len(days)), "date": np.repeat(days, n_symbols * n_f),
                "factor": np.tile(FACTOR_NAMES, len(days) * n_symbols), "beta": beta, "beta_uncapped": beta,
                "observations": 90, "method": "ols", "window": 90, "min_observations": 30, "beta_cap": 5.0,
                "quality": "ok", "residual_variance": rng.uniform(1e-4, 9e-4, rows)}))
        bulk_insert(conn, portfolios, pd.DataFrame({"id": pids, "owner_id": user_ids, "name": "main",
                                                    "equity": equity, "currency": "USD"}))
        bulk_insert(conn, portfolio_equity, pd.DataFrame({"portfolio_id": pids, "effective_date": beta_days[0],
                                                          "equity": equity}))
        bulk_insert(conn, positions, pd.DataFrame({
            "id": np.arange(1, k + 1), "portfolio_id": np.repeat(pids, n_positions),
            "symbol": np.array(symbols)[rng.integers(0, n_symbols, k)], "quantity": qty,
            "entry_date": beta_days[0], "investment_class": "equity"}))
        bulk_insert(conn, position_quantities, pd.DataFrame({"position_id": np.arange(1, k + 1),
                                                             "effective_date": beta_days[0], "quantity": qty}))
        for table, top in (("users", n_users), ("api_keys", n_users), ("positions", k)):
            conn.exec_driver_sql(f"SELECT setval('{table}_id_seq', %s)", (top,))
    # As autovacuum would after a bulk load: index-only scans need the visibility map.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    return [users_load.SimUser(keys[i], pids[i], tuple(range(i * n_positions + 1, (i + 1) * n_positions + 1)))
            for i in range(n_users)]


def materialise_portfolios(url: str) -> float:
    """The nightly portfolio run: exposures and stress tests cached for every portfolio. Returns seconds."""
    import dagster as dg

    from symbol_pipeline.defs.portfolios.assets import PORTFOLIO_ASSETS
    from symbol_pipeline.defs.resources import DatabaseResource, StressScenariosResource
    from symbol_pipeline.runs.submit import portfolio_run_config

    started = time.perf_counter()
    result = dg.materialize(PORTFOLIO_ASSETS, run_config=portfolio_run_config([]),
                            resources={"database": DatabaseResource(url=url), "stress_scenarios": StressScenariosResource()})
    assert result.success
    return time.perf_counter() - started
