"""Stress tests: propagation, P&L signs against a hand-computed case, scenarios validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from symbol_pipeline.lib import stress
from symbol_pipeline.lib.factors import REGRESSOR_ETFS
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline_tests.portfolio_data import CALC_DATE, seed_etf_history, seed_symbols

ETFS = list(REGRESSOR_ETFS)


def test_rate_shock_sign_and_size():
    assert stress.rate_shock_to_tlt(100) == pytest.approx(-0.165)
    assert stress.rate_shock_to_tlt(-25) == pytest.approx(0.04125)


def test_conditional_expectation_matches_formula_and_keeps_shocks():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 8))
    cov = a @ a.T / 100
    shocks = {"SPY": -0.1, "TLT": 0.05}
    moves = stress.conditional_moves(shocks, cov, ETFS)
    s, u = [0, 1], list(range(2, 8))
    expected = cov[np.ix_(u, s)] @ np.linalg.solve(cov[np.ix_(s, s)], np.array([-0.1, 0.05]))
    assert moves[:2].tolist() == [-0.1, 0.05]
    assert np.allclose(moves[2:], expected)


def test_ewma_weights_newest_most_and_window_ends_at_the_data():
    returns = np.zeros((100, 2))
    returns[-1] = [0.1, 0.1]
    cov = stress.ewma_covariance(returns)
    w_last = (1 - 0.94) / (1 - 0.94**100)
    assert cov[0, 1] == pytest.approx(w_last * 0.01)
    with pytest.raises(ValueError, match="sessions"):
        stress.ewma_covariance(returns[:10])


def test_total_returns_use_dividends_and_splits():
    sessions = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"])
    prices = pd.DataFrame({"symbol": "SPY", "date": sessions.date, "close": [100.0, 49.0, 50.0],
                           "dividend": [0.0, 1.0, 0.0], "split_ratio": [1.0, 2.0, 1.0]})
    r = stress.etf_returns(prices, sessions, ["SPY"])
    assert r["SPY"].tolist() == pytest.approx([(49 + 1) * 2 / 100 - 1, 50 / 49 - 1])


def test_hand_computed_pnl_per_model_without_summing_or_cap():
    legs = svc.FACTOR_LEGS
    betas = np.zeros((2, len(legs)))
    names = [leg.factor for leg in legs]
    betas[0, names.index("market_beta")] = 1.2
    betas[0, names.index("ir_beta")] = 0.8          # a long-TLT-beta book
    betas[0, names.index("ridge_value")] = 0.5
    betas[0, names.index("spread_growth_value")] = 0.4
    betas[1, names.index("market_beta")] = -3.0      # net short, levered
    equity = np.array([1e6, 1e5])
    moves = stress.direct_moves({"SPY": 0.25, "TLT": stress.rate_shock_to_tlt(100), "VTV": 0.1, "VUG": 0.05}, ETFS)
    models, contrib = stress.model_pnl(betas, equity, legs, moves, ETFS)
    assert models["market"][0] == pytest.approx(1.2 * 0.25 * 1e6)
    assert models["rates"][0] == pytest.approx(0.8 * -0.165 * 1e6) and models["rates"][0] < 0
    assert models["style"][0] == pytest.approx(0.5 * 0.1 * 1e6)
    assert models["spread"][0] == pytest.approx(0.4 * (0.05 - 0.1) * 1e6)
    # A net-short book in a +25% rally loses 75% of equity: reported in full, no cap.
    assert models["market"][1] == pytest.approx(-3.0 * 0.25 * 1e5)


def test_service_stress_rates_up_hurts_long_tlt_beta_book(engine):
    seed_symbols(engine, {"BOND": {"ir_beta": 0.9, "market_beta": 0.1}}, {"BOND": 100.0})
    seed_etf_history(engine)
    user = svc.create_user(engine, "dora")
    pf = svc.create_portfolio(engine, user.id, "bonds", 100_000)
    svc.add_position(engine, pf["id"], "BOND", 1000)
    doc = svc.run_stress_test(engine, pf["id"], scenario_names=["rates_up_100bp", "rates_down_100bp", "market_down_10"])
    by = {s["name"]: s for s in doc["scenarios"]}
    up = by["rates_up_100bp"]
    assert up["shocks"]["TLT"] == pytest.approx(-0.165)
    assert up["models"]["rates"]["direct_pnl"] == pytest.approx(0.9 * -0.165 * 100_000)
    assert up["models"]["rates"]["contributions"]["ir_beta"]["direct"] == pytest.approx(0.9 * -0.165 * 100_000)
    assert by["rates_down_100bp"]["models"]["rates"]["direct_pnl"] > 0
    assert up["headline"]["model"] == "market" and up["headline"]["direct_pnl"] == 0.0
    # Correlated path: SPY moves by its conditional expectation; the market shock reaches the market model.
    assert up["etf_moves"]["TLT"] == pytest.approx(-0.165) and up["etf_moves"]["SPY"] != 0
    assert by["market_down_10"]["headline"]["direct_pnl"] == pytest.approx(0.1 * -0.10 * 100_000)
    assert doc["calc_date"] == CALC_DATE.isoformat() and doc["covariance"]["sessions"] == 252
    again = svc.run_stress_test(engine, pf["id"], scenario_names=["rates_up_100bp", "rates_down_100bp", "market_down_10"])
    assert again == doc


def test_scenarios_file_validated_and_extendable(tmp_path, monkeypatch):
    names = [s.name for s in svc.load_scenarios()]
    for required in ["market_crash_35", "rates_up_300bp", "volatility_spike", "liquidity_crisis", "replay_2008",
                     "replay_2020", "replay_2000_2002"]:
        assert required in names
    extra = tmp_path / "mine.json"
    extra.write_text(json.dumps({"scenarios": [{"name": "tlt_crash", "shocks": {"TLT": -0.3}}]}))
    assert "tlt_crash" in [s.name for s in svc.load_scenarios(extra)]
    for bad in [{"name": "x", "shocks": {"XLF": 0.1}}, {"name": "x", "shocks": {"SPY": -1.5}},
                {"name": "x", "rates_bp": 50, "shocks": {"TLT": 0.1}}, {"name": "x"}, {"name": "x", "shock": {}}]:
        with pytest.raises(ValueError):
            stress.parse_scenarios({"scenarios": [bad]}, ETFS)
