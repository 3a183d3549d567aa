"""Portfolio exposures: the sparse kernel and the service on both backends."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import sqlalchemy as sa

from symbol_pipeline.lib.exposures import aggregate_exposures, market_value_matrix
from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.portfolio_schema import portfolio_exposure_summary, portfolio_factor_exposures
from symbol_pipeline_tests.portfolio_data import CALC_DATE, seed_symbols


def test_kernel_shorts_and_leverage_known_answer():
    # Portfolio 0: long 150k A (β 1.2), short 50k B (β 0.8) on 100k equity: gross 2.0×, net 1.0×.
    mv = market_value_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), np.array([150e3, -50e3, 10e3]), (2, 2))
    betas = np.array([[1.2, np.nan], [0.8, 0.5]])
    out = aggregate_exposures(mv, betas, np.array([100e3, 20e3]))
    assert out.beta[0, 0] == pytest.approx(1.5 * 1.2 - 0.5 * 0.8)
    assert out.dollar_exposure[0, 0] == pytest.approx(150e3 * 1.2 - 50e3 * 0.8)
    assert out.gross_exposure[0] == pytest.approx(200e3) and out.net_exposure[0] == pytest.approx(100e3)
    assert out.coverage[0, 0] == 1.0 and out.coverage[0, 1] == pytest.approx(0.25)
    assert out.beta[0, 1] == pytest.approx(-0.5 * 0.5)
    assert out.beta[1, 0] == pytest.approx(0.5 * 0.8)


def test_kernel_scales_with_positions_and_flags_non_positive_equity():
    mv = market_value_matrix(np.array([0, 1, 2]), np.array([0, 0, 0]), np.array([10.0, 10.0, 10.0]), (3, 1))
    out = aggregate_exposures(mv, np.array([[2.0]]), np.array([10.0, 0.0, -5.0]))
    assert out.valid.tolist() == [True, False, False]
    assert out.beta[0, 0] == 2.0 and np.isnan(out.beta[1:, 0]).all()
    doubled = aggregate_exposures(mv * 2, np.array([[2.0]]), np.array([10.0, 1.0, 1.0]))
    assert doubled.beta[0, 0] == 2 * out.beta[0, 0]


def _book(engine, equity=100_000.0):
    seed_symbols(engine, {"AAA": {f: 1.2 for f in FACTOR_NAMES}, "BBB": {"market_beta": 0.8, "ir_beta": -0.3}},
                 {"AAA": 100.0, "BBB": 50.0})
    user = svc.create_user(engine, "alice")
    pf = svc.create_portfolio(engine, user.id, "book", equity)
    return user, pf


def test_service_weights_with_shorts_and_leverage(engine):
    _, pf = _book(engine)
    svc.add_position(engine, pf["id"], "AAA", 1500)  # +150k
    svc.add_position(engine, pf["id"], "bbb", -1000)  # −50k short
    doc = svc.get_portfolio_factor_exposures(engine, pf["id"])
    mkt = doc["factors"]["market_beta"]
    assert mkt["beta"] == pytest.approx(1.5 * 1.2 - 0.5 * 0.8)
    assert mkt["dollar_exposure"] == pytest.approx(100_000 * (1.5 * 1.2 - 0.5 * 0.8))
    assert doc["gross_leverage"] == pytest.approx(2.0) and doc["net_leverage"] == pytest.approx(1.0)
    assert doc["factors"]["ir_beta"]["beta"] == pytest.approx(1.5 * 1.2 + 0.5 * 0.3)
    assert doc["betas_date"] == CALC_DATE.isoformat() and doc["prices_date"] == CALC_DATE.isoformat()


def test_coverage_with_missing_betas_names_the_symbols(engine):
    _, pf = _book(engine)
    seed_symbols(engine, {"NOB": {}}, {"NOB": 10.0})  # every beta NULL (insufficient data)
    svc.add_position(engine, pf["id"], "AAA", 300)  # 30k
    svc.add_position(engine, pf["id"], "BBB", -200)  # −10k
    svc.add_position(engine, pf["id"], "NOB", 1000)  # 10k without betas
    doc = svc.get_portfolio_factor_exposures(engine, pf["id"])
    assert doc["factors"]["market_beta"]["coverage"] == pytest.approx(40 / 50)
    assert doc["factors"]["ridge_value"]["coverage"] == pytest.approx(30 / 50)
    assert doc["factors"]["ridge_value"]["missing_symbols"] == ["BBB", "NOB"]
    assert doc["missing_symbols"] == ["BBB", "NOB"]
    # Missing is not a silent zero of coverage: the beta is the covered part only.
    assert doc["factors"]["market_beta"]["beta"] == pytest.approx(0.3 * 1.2 - 0.1 * 0.8)


def test_latest_beta_on_or_before_as_of_and_stale_flag(engine):
    _, pf = _book(engine)
    earlier = CALC_DATE - dt.timedelta(days=3)
    seed_symbols(engine, {"OLD": {"market_beta": 2.0}}, {"OLD": 20.0}, date=earlier)
    svc.add_position(engine, pf["id"], "OLD", 500, entry_date=earlier)
    doc = svc.get_portfolio_factor_exposures(engine, pf["id"])
    assert doc["stale_symbols"] == ["OLD"]
    assert doc["factors"]["market_beta"]["beta"] == pytest.approx(0.1 * 2.0)
    before = svc.get_portfolio_factor_exposures(engine, pf["id"], as_of=earlier)
    assert before["betas_date"] == earlier.isoformat() and before["stale_symbols"] == []


def test_unpriced_position_uses_entry_price_and_is_named(engine):
    _, pf = _book(engine)
    svc.add_position(engine, pf["id"], "NEWCO", 100, entry_price=10.0)
    doc = svc.get_portfolio_factor_exposures(engine, pf["id"])
    assert doc["unpriced_symbols"] == ["NEWCO"] and doc["gross_exposure"] == pytest.approx(1000.0)
    assert doc["factors"]["market_beta"]["coverage"] == 0.0


def test_non_positive_equity_is_a_clear_error(engine):
    user, pf = _book(engine)
    svc.add_position(engine, pf["id"], "AAA", 10)
    svc.set_equity(engine, pf["id"], 0)
    with pytest.raises(svc.NonPositiveEquityError, match="positive equity"):
        svc.get_portfolio_factor_exposures(engine, pf["id"])
    with pytest.raises(ValueError):
        svc.create_portfolio(engine, user.id, "neg", -5)


def test_batch_matches_single_and_records_errors(engine):
    user, pf = _book(engine)
    svc.add_position(engine, pf["id"], "AAA", 1500)
    svc.add_position(engine, pf["id"], "BBB", -1000)
    broke = svc.create_portfolio(engine, user.id, "broke", 1000)
    svc.add_position(engine, broke["id"], "AAA", 5)
    svc.set_equity(engine, broke["id"], -10)
    empty = svc.create_portfolio(engine, user.id, "empty", 1000)
    batch = svc.compute_portfolio_exposures(engine)
    assert set(batch.documents) == {pf["id"], empty["id"]}
    assert "positive equity" in batch.errors[broke["id"]]
    single = svc.get_portfolio_factor_exposures(engine, pf["id"])
    assert single == batch.documents[pf["id"]]
    assert batch.documents[empty["id"]]["factors"]["market_beta"]["coverage"] is None
    with engine.connect() as conn:
        rows = conn.execute(sa.select(portfolio_factor_exposures)).all()
        summary = {r.portfolio_id: r for r in conn.execute(sa.select(portfolio_exposure_summary))}
    assert len(rows) == 2  # one wide row per computed portfolio, three columns per factor
    stored = {r.portfolio_id: r._mapping for r in rows}
    for name in FACTOR_NAMES:
        for measure in ("beta", "dollar_exposure", "coverage"):
            assert stored[pf["id"]][f"{measure}_{name}"] == single["factors"][name][measure]
    assert summary[broke["id"]].error and summary[pf["id"]].error is None
