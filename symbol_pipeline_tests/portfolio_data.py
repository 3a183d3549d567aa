"""Fixtures and seeders of the portfolio tests: a database per backend (SQLite file, fresh PostgreSQL database).

A folder whose tests use them imports the fixtures into its conftest.py (the root conftest's
`engine` is the pipeline's, from the environment; these are empty databases).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from symbol_pipeline.lib.factors import FACTOR_NAMES, REGRESSOR_ETFS
from symbol_pipeline.lib.sessions import sessions_ending
from symbol_pipeline.storage.database import all_metadata, ensure_schema
from symbol_pipeline.storage.dialect import make_engine
from symbol_pipeline.storage.schema import symbol_factor_exposures, symbol_prices_daily, symbol_universe

PG_ADMIN_URL = os.environ.get("SP_PORTFOLIO_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
CALC_DATE = dt.date(2024, 6, 28)


def _pg_available() -> bool:
    try:
        with make_engine(PG_ADMIN_URL).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    if not _pg_available():
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432")
    name = f"sp_portfolio_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    ensure_schema(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _truncate_pg(engine: sa.Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in all_metadata().sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    ensure_schema(engine)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path) -> Iterator[sa.Engine]:
    """An empty project database on each backend."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'portfolio.sqlite'}")
        ensure_schema(eng)
    else:
        eng = make_engine(request.getfixturevalue("pg_url"))
        _truncate_pg(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def pg_engine(pg_url) -> Iterator[sa.Engine]:
    eng = make_engine(pg_url)
    _truncate_pg(eng)
    yield eng
    eng.dispose()


def seed_symbols(
    engine: sa.Engine,
    betas: Mapping[str, Mapping[str, float | None]],
    closes: Mapping[str, float],
    date: dt.date = CALC_DATE,
    status: str = "active",
) -> None:
    """Symbols in the universe with a close and factor rows on `date` (a factor absent or None: NULL beta)."""
    price_rows = [{"symbol": s, "date": date, "close": c, "source": "test"} for s, c in closes.items()]
    beta_rows = []
    for symbol, by_factor in betas.items():
        for factor in FACTOR_NAMES:
            value = by_factor.get(factor)
            beta_rows.append({
                "symbol": symbol, "date": date, "factor": factor, "beta": value, "beta_uncapped": value,
                "observations": 90 if value is not None else 5, "method": "ols", "window": 90,
                "min_observations": 30, "beta_cap": 5.0,
                "quality": "ok" if value is not None else "insufficient_data",
            })
    with engine.begin() as conn:
        universe = [{"symbol": s, "status": status} for s in {*betas, *closes}]
        existing = set(conn.execute(sa.select(symbol_universe.c.symbol)).scalars())
        new = [u for u in universe if u["symbol"] not in existing]
        if new:
            conn.execute(symbol_universe.insert(), new)
        if price_rows:
            conn.execute(symbol_prices_daily.insert(), price_rows)
        if beta_rows:
            conn.execute(symbol_factor_exposures.insert(), beta_rows)


def seed_etf_history(engine: sa.Engine, end: dt.date = CALC_DATE, sessions: int = 253, seed: int = 3) -> pd.DataFrame:
    """Random-walk closes of the eight ETFs (correlated through a common market factor) for `sessions`."""
    rng = np.random.default_rng(seed)
    days = sessions_ending(end, sessions)
    market = rng.normal(0, 0.01, len(days))
    loadings = {"SPY": 1.0, "TLT": -0.3, "VTV": 0.9, "VUG": 1.1, "MTUM": 1.0, "QUAL": 0.95, "IWM": 1.2, "USMV": 0.7}
    rows = []
    for etf in REGRESSOR_ETFS:
        rets = loadings[etf] * market + rng.normal(0, 0.004, len(days))
        closes = 100 * np.cumprod(1 + rets)
        rows += [{"symbol": etf, "date": d.date(), "close": float(c), "source": "test"} for d, c in zip(days, closes)]
    with engine.begin() as conn:
        conn.execute(symbol_prices_daily.insert(), rows)
    return pd.DataFrame(rows)


def seed_market(engine: sa.Engine, symbols: list[str], days: list[dt.date], seed: int = 11,
                splits: Mapping[tuple[str, dt.date], float] | None = None, beta_gaps: float = 0.1,
                betas_from: int = 0) -> None:
    """Random closes of `symbols` on `days` (the split rows of `splits` carry their ratio) and all twelve
    betas per session from day index `betas_from` on; a share `beta_gaps` of the symbol-sessions have
    no beta rows at all, and a few single betas are NULL (insufficient data)."""
    rng = np.random.default_rng(seed)
    splits = dict(splits or {})
    prices, betas = [], []
    for symbol in symbols:
        closes = 20 * np.cumprod(1 + rng.normal(0, 0.02, len(days)))
        for i, day in enumerate(days):
            prices.append({"symbol": symbol, "date": day, "close": float(closes[i]),
                           "split_ratio": splits.get((symbol, day), 1.0), "source": "test"})
            if i < betas_from or rng.random() < beta_gaps:
                continue
            for factor in FACTOR_NAMES:
                value = None if rng.random() < 0.03 else float(rng.normal(0.6, 0.5))
                betas.append({"symbol": symbol, "date": day, "factor": factor, "beta": value, "beta_uncapped": value,
                              "observations": 90, "method": "ols", "window": 90, "min_observations": 30,
                              "beta_cap": 5.0, "quality": "ok" if value is not None else "insufficient_data"})
    with engine.begin() as conn:
        existing = set(conn.execute(sa.select(symbol_universe.c.symbol)).scalars())
        new = [{"symbol": s, "status": "active"} for s in symbols if s not in existing]
        if new:
            conn.execute(symbol_universe.insert(), new)
        conn.execute(symbol_prices_daily.insert(), prices)
        if betas:
            conn.execute(symbol_factor_exposures.insert(), betas)
