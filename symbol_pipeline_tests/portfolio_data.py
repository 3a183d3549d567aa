"""Seeders of the portfolio tests: symbols with closes and betas, the regressor ETFs' history, a
random market. They write into any project database, such as the `engine` and `pg_engine`
fixtures of databases.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd
import sqlalchemy as sa

from symbol_pipeline.lib.factors import FACTOR_NAMES, REGRESSOR_ETFS
from symbol_pipeline.lib.sessions import sessions_ending
from symbol_pipeline.storage.schema import symbol_factor_exposures, symbol_prices_daily, symbol_universe

CALC_DATE = dt.date(2024, 6, 28)


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
