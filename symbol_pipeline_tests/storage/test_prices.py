"""Price upserts: writing a batch twice leaves the same rows, exact to the last bit of a float64,
and a batch that fails leaves the rows written before it."""

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from symbol_pipeline.storage import prices
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.schema import symbol_prices_daily


def _frame(closes):
    return pd.DataFrame(
        {
            "symbol": "AAA",
            "date": [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(len(closes))],
            "open": closes, "high": closes, "low": closes, "close": closes, "adj_close": closes,
            "volume": 1e6, "dividend": 0.0, "split_ratio": 1.0,
        }
    )


def test_price_upsert_is_idempotent_and_keeps_float64(database_url):
    engine = get_engine(database_url)
    closes = [101.123456789012345, 102.000000000000001, 99.87654321]
    for _ in range(2):
        with engine.begin() as conn:
            prices.write_prices(conn, _frame(closes), "test")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(symbol_prices_daily.c.close).order_by(symbol_prices_daily.c.date)).scalars()
        assert list(stored) == closes
        count = conn.execute(sa.select(sa.func.count()).select_from(symbol_prices_daily)).scalar()
    assert count == 3


def test_a_failed_batch_leaves_earlier_rows(database_url):
    engine = get_engine(database_url)
    with engine.begin() as conn:
        prices.write_prices(conn, _frame([10.0, 11.0]), "test")
    bad = _frame([12.0, 13.0])
    bad.loc[1, "close"] = None  # violates NOT NULL: the whole batch must roll back
    try:
        with engine.begin() as conn:
            prices.write_prices(conn, bad, "test")
    except Exception:
        pass
    with engine.connect() as conn:
        stored = list(conn.execute(sa.select(symbol_prices_daily.c.close).order_by(symbol_prices_daily.c.date)).scalars())
    assert stored == [10.0, 11.0]
