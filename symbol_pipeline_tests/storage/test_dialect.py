"""The database-specific code: COPY writes and reads on PostgreSQL round-trip exactly."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import sqlalchemy as sa

from symbol_pipeline.storage.dialect import bulk_insert, copy_text, read_frame, upsert_frame
from symbol_pipeline.storage.schema import symbol_prices_daily


def _floats(n: int) -> np.ndarray:
    """Awkward doubles: 17 significant digits, tiny, huge, negative zero's neighbours, subnormal."""
    rng = np.random.default_rng(11)
    values = np.concatenate([
        rng.normal(0, 1, n), rng.uniform(1e-300, 1e300, n) * rng.choice([-1, 1], n), rng.normal(0, 1e-5, n),
        [0.1, 1 / 3, 2 / 3, np.nextafter(1.0, 2.0), 5e-324, 1.7976931348623157e308, -0.0, 1e16 + 2],
    ])
    return np.abs(values) + 1e-9  # closes are positive


def test_copy_writer_and_reader_round_trip_floats_exactly(pg_engine):
    closes = _floats(3000)
    start = dt.date(2000, 1, 1)
    frame = pd.DataFrame({
        "symbol": "S\\T",  # a backslash is escaped in COPY's text format
        "date": [start + dt.timedelta(days=i) for i in range(len(closes))],
        "close": closes, "adj_close": np.where(np.arange(len(closes)) % 7 == 0, np.nan, closes / 3),
        "source": "test",
    })
    with pg_engine.begin() as conn:
        bulk_insert(conn, symbol_prices_daily, frame.iloc[: len(frame) // 2])
        assert upsert_frame(conn, symbol_prices_daily, frame.iloc[len(frame) // 2 :]) == len(frame) - len(frame) // 2
    c = symbol_prices_daily.c
    with pg_engine.connect() as conn:
        back = read_frame(conn, sa.select(c.symbol, c.date, c.close, c.adj_close).order_by(c.date))
        exact = conn.execute(sa.select(c.close, c.adj_close).order_by(c.date)).all()
    assert back["symbol"].unique().tolist() == ["S\\T"]
    assert pd.to_datetime(back["date"]).dt.date.tolist() == frame["date"].tolist()
    np.testing.assert_array_equal(back["close"].to_numpy(), closes)  # bit for bit, not approximately
    np.testing.assert_array_equal(back["adj_close"].to_numpy(), frame["adj_close"].to_numpy())
    np.testing.assert_array_equal(np.array([r.close for r in exact]), closes)


def test_copy_text_format_nulls_and_escapes():
    frame = pd.DataFrame({"a": [1.5, np.nan], "b": ["x\ty", None], "c": [True, False], "d": [3, 4],
                          "e": [dt.date(2024, 1, 2), None]})
    assert copy_text(frame) == "1.5\tx\\ty\tt\t3\t2024-01-02\n\\N\t\\N\tf\t4\t\\N\n"
