"""Counter-based draws: each a function of (key, stream, index) only; the ETF factor draw."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from symbol_pipeline.sources.synthetic import ETFS, SyntheticMarket
from symbol_pipeline.sources.synthetic.generator import (
    S_IDIO,
    S_OPEN,
    etf_factor_returns,
    symbol_key,
    uniform,
    uniform_pairs,
)

D = dt.date


def test_a_draw_does_not_depend_on_what_else_is_drawn() -> None:
    keys = np.array([symbol_key(3, s) for s in ("AAPL", "MSFT", "SYN0001")], dtype=np.uint64)
    index = np.arange(500, dtype=np.uint64)
    full = uniform(keys, S_IDIO, index)
    assert full.shape == (3, 500) and 0 < full.min() and full.max() < 1
    np.testing.assert_array_equal(uniform(keys[1:2], S_IDIO, index[100:200]), full[1:2, 100:200])
    pairs = uniform_pairs(keys[[2, 0]], S_IDIO, np.array([7, 42], dtype=np.uint64))
    np.testing.assert_array_equal(pairs, [full[2, 7], full[0, 42]])
    assert not np.array_equal(uniform(keys, S_OPEN, index), full)  # streams are independent draws
    assert symbol_key(3, "AAPL") != symbol_key(4, "AAPL")


def test_uniforms_look_uniform() -> None:
    u = uniform(np.array([symbol_key(1, "X")], dtype=np.uint64), S_IDIO, np.arange(100_000, dtype=np.uint64))[0]
    assert u.mean() == pytest.approx(0.5, abs=0.005) and u.var() == pytest.approx(1 / 12, rel=0.02)


def test_a_longer_calendar_keeps_the_etf_returns_of_existing_sessions() -> None:
    np.testing.assert_array_equal(etf_factor_returns(5, 1000), etf_factor_returns(5, 1200)[:1000])


def test_etf_returns_have_the_intended_covariance(market: SyntheticMarket) -> None:
    r = market.generated_total_returns(list(ETFS), D(2000, 1, 1), D(2024, 12, 31)).dropna()
    vol = r.std() * np.sqrt(252)
    assert vol["SPY"] == pytest.approx(0.17, rel=0.05) and vol["USMV"] == pytest.approx(0.12, rel=0.05)
    assert vol["IWM"] == pytest.approx(0.22, rel=0.05) and vol["TLT"] == pytest.approx(0.15, rel=0.05)
    corr = r.corr()
    assert corr.loc["SPY", "TLT"] < 0 and corr.loc["SPY", "VUG"] > 0.9
