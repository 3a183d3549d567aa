"""The latest value on or before a date, read from the symbol tables."""

from __future__ import annotations

import datetime as dt

import numpy as np

from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.storage import latest
from symbol_pipeline_tests.portfolio_data import CALC_DATE, seed_symbols


def test_latest_betas_small_path_agrees_with_the_frame_path(engine, monkeypatch):
    earlier = CALC_DATE - dt.timedelta(days=3)
    seed_symbols(engine, {"AAA": {"market_beta": 0.5, "ir_beta": 0.2}, "OLD": {"market_beta": 0.9}}, {}, date=earlier)
    seed_symbols(engine, {"AAA": {"market_beta": 1.5}, "BBB": {"ridge_value": -0.3}}, {})
    symbols = ["AAA", "BBB", "NONE", "OLD"]
    seen = {}
    for as_of in (None, CALC_DATE, earlier):
        with engine.connect() as conn:
            _, betas_date = latest.snapshot_dates(conn, as_of)
            small = latest.latest_betas(conn, symbols, as_of, betas_date)
            monkeypatch.setattr(latest, "_SMALL", 0)
            frame = latest.latest_betas(conn, symbols, as_of, betas_date)
            monkeypatch.undo()
        np.testing.assert_array_equal(small[0], frame[0])
        np.testing.assert_array_equal(small[1], frame[1])
        seen[as_of] = small[0]
    mkt, ir = FACTOR_NAMES.index("market_beta"), FACTOR_NAMES.index("ir_beta")
    # The latest non-NULL beta per factor: AAA's market beta from the last day, its rate beta from before.
    assert (seen[None][0, mkt], seen[None][0, ir], seen[None][3, mkt]) == (1.5, 0.2, 0.9)
    assert seen[earlier][0, mkt] == 0.5 and np.isnan(seen[None][2]).all()
