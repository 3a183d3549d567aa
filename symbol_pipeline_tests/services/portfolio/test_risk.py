"""The risk decomposition service: the figures against direct computations, the 409 for betas without
residual variance, the cache, and the whole path from the real prices through the symbol layer."""

from __future__ import annotations

import datetime as dt
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import statsmodels.api as sm
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from symbol_pipeline.lib.factors import FACTOR_NAMES, REGRESSOR_ETFS, RIDGE_ALPHA, RIDGE_ETFS
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.services import symbol_layer
from symbol_pipeline.sources.csv_dir import CsvDirectorySource
from symbol_pipeline.storage.schema import symbol_factor_exposures
from symbol_pipeline_tests.portfolio_data import CALC_DATE, seed_etf_history, seed_symbols
from symbol_pipeline_tests.reference import read_real_closes

STYLE = [f for f in FACTOR_NAMES if f.startswith("ridge_")]
GROUPS = {"market": ["market_beta"], "rates": ["ir_beta"], "style": STYLE}
AAA_BETAS = {"market_beta": 1.1, "ir_beta": -0.4, **dict(zip(STYLE, [0.3, 0.5, -0.2, 0.25, 0.1, 0.15]))}
AAA_S2 = {"market": 4e-4, "rates": 6e-4, "style": 2.5e-4}
ENTRY = dt.date(2024, 1, 2)  # the positions' entry: the holdings of CALC_DATE hold them


def set_residuals(engine, symbol: str, by_model: dict[str, float | None]) -> None:
    t = symbol_factor_exposures
    with engine.begin() as conn:
        for model, value in by_model.items():
            conn.execute(t.update().where(t.c.symbol == symbol, t.c.factor.in_(GROUPS[model]))
                         .values(residual_variance=value))


def ewma_of(series: np.ndarray, lam: float = 0.94) -> float:
    """Zero-mean EWMA variance of a return series (newest last), weights renormalised."""
    w = lam ** np.arange(len(series) - 1, -1, -1)
    return float((w / w.sum()) @ (series * series))


@pytest.fixture
def one_stock(engine):
    seed_symbols(engine, {"AAA": AAA_BETAS}, {"AAA": 10.0})
    set_residuals(engine, "AAA", AAA_S2)
    etf = seed_etf_history(engine)
    user = svc.create_user(engine, "rita")
    pf = svc.create_portfolio(engine, user.id, "one", 100_000)
    svc.add_position(engine, pf["id"], "AAA", 400, entry_date=ENTRY)
    svc.add_position(engine, pf["id"], "AAA", 600, entry_date=ENTRY)  # two positions of one symbol: one weight, 0.1
    returns = etf.pivot(index="date", columns="symbol", values="close").pct_change().iloc[1:]
    return engine, pf, user, returns


def test_one_stock_portfolio_against_direct_computation(one_stock):
    engine, pf, user, returns = one_stock
    doc = svc.get_portfolio_risk(engine, pf["id"], owner_id=user.id)
    assert doc["headline"] == "style" and doc["as_of"] == CALC_DATE.isoformat() and doc["assumptions"]
    exposures = svc.get_portfolio_factor_exposures(engine, pf["id"])["factors"]
    assert len(returns) == 252
    for name, factors in GROUPS.items():
        m = doc["models"][name]
        etfs = {"market": ["SPY"], "rates": ["TLT"], "style": list(RIDGE_ETFS)}[name]
        b = np.array([0.1 * AAA_BETAS[f] for f in factors])
        for f, value in zip(factors, b):
            assert m["exposures"][f] == pytest.approx(value, rel=1e-12)
            assert m["exposures"][f] == pytest.approx(exposures[f]["beta"], rel=1e-12)  # the §1 portfolio betas
        assert sum(m["contributions"].values()) == pytest.approx(m["factor_variance"], rel=1e-12)
        implied = returns[etfs].to_numpy() @ b  # the model-implied daily returns, 252 sessions ending at D
        assert m["factor_variance"] == pytest.approx(ewma_of(implied), rel=1e-9)
        assert m["specific_variance"] == pytest.approx(0.1**2 * AAA_S2[name], rel=1e-12)
        total = m["factor_variance"] + m["specific_variance"]
        assert m["total_variance"] == pytest.approx(total, rel=1e-12)
        assert m["volatility_annualised"] == pytest.approx(np.sqrt(252 * total))
        assert m["var_95_1d"] == pytest.approx(1.6449 * np.sqrt(total) * 100_000)
        assert m["var_99_1d"] == pytest.approx(2.3263 * np.sqrt(total) * 100_000) and m["var_99_1d"] > 0
        assert m["coverage"] == 1.0 and m["missing_symbols"] == [] and m["error"] is None
        assert m["covariance_sessions"] == 252


def test_betas_without_residual_variance_are_a_409_naming_the_date(one_stock):
    engine, pf, user, _ = one_stock
    set_residuals(engine, "AAA", {"style": None})
    with pytest.raises(svc.RiskDataError, match=f"residual variance not computed for {CALC_DATE}: backfill"):
        svc.get_portfolio_risk(engine, pf["id"], owner_id=user.id)
    with pytest.raises(svc.NotFoundError):
        svc.get_portfolio_risk(engine, pf["id"], owner_id=user.id + 1)


def test_symbols_without_betas_drop_out(one_stock):
    engine, pf, user, _ = one_stock
    seed_symbols(engine, {"NOB": {}}, {"NOB": 50.0})  # rows with NULL betas (insufficient data)
    svc.add_position(engine, pf["id"], "NOB", -300, entry_date=ENTRY)  # −15,000 of 100,000: a short without betas
    doc = svc.get_portfolio_risk(engine, pf["id"])
    for name, model in doc["models"].items():
        assert model["coverage"] == pytest.approx(10_000 / 25_000)
        assert model["missing_symbols"] == ["NOB"]
        assert model["specific_variance"] == pytest.approx(0.01 * AAA_S2[name])


def test_cached_and_invalidated_like_the_exposures(one_stock):
    engine, pf, user, _ = one_stock
    first, hit = svc.portfolio_risk_json(engine, pf["id"], owner_id=user.id)
    assert hit is False
    again, hit = svc.portfolio_risk_json(engine, pf["id"], owner_id=user.id)
    assert hit is True and again == first
    svc.add_position(engine, pf["id"], "AAA", 1000)  # the change bumps the version: the entry is unreachable
    changed, hit = svc.portfolio_risk_json(engine, pf["id"], owner_id=user.id)
    assert hit is False
    before = json.loads(first)["models"]["style"]["specific_variance"]
    assert svc.get_portfolio_risk(engine, pf["id"])["models"]["style"]["specific_variance"] == \
        pytest.approx(4 * before)
    assert svc.portfolio_risk_json(engine, pf["id"])[1] is True
    svc.invalidate_portfolio_cache(engine, pf["id"])
    assert svc.portfolio_risk_json(engine, pf["id"])[1] is False
    svc.invalidate_all_caches(engine)
    assert svc.portfolio_risk_json(engine, pf["id"])[1] is False
    # An as_of of its own is its own entry, on the holdings of that date (without today's addition).
    dated, hit = svc.portfolio_risk_json(engine, pf["id"], CALC_DATE)
    assert hit is False and json.loads(dated)["models"]["style"]["specific_variance"] == pytest.approx(before)
    # A date before any beta has nothing to decompose; one before the portfolio existed is a 422.
    with pytest.raises(svc.ValidationError, match="before portfolio"):
        svc.get_portfolio_risk(engine, pf["id"], ENTRY - dt.timedelta(days=1))
    with pytest.raises(svc.RiskDataError, match="no symbol betas"):
        svc.get_portfolio_risk(engine, pf["id"], CALC_DATE - dt.timedelta(days=1))


# ---------------------------------------------------------------- the real prices, end to end

REAL_DAY = dt.date(2024, 6, 28)
REAL_STOCKS = ["NEE", "NVDA", "JPM"]


def _mse_resid(y: np.ndarray, x: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(sm.OLS(y, sm.add_constant(x)).fit().mse_resid)


def _ridge_s2(y: np.ndarray, X: np.ndarray) -> float:
    scaler = StandardScaler().fit(X)
    model = Ridge(alpha=RIDGE_ALPHA).fit(scaler.transform(X), y)
    resid = y - model.predict(scaler.transform(X))
    return float(resid @ resid / (len(y) - X.shape[1] - 1))


def test_real_prices_through_the_symbol_layer(engine, real_prices_dir):
    wanted = [*REAL_STOCKS, *REGRESSOR_ETFS]
    symbol_layer.load_prices(engine, CsvDirectorySource(real_prices_dir), wanted, [REAL_DAY])
    symbol_layer.compute_betas(engine, wanted, [REAL_DAY])
    closes = read_real_closes(real_prices_dir)
    rets = closes.pct_change(fill_method=None).loc[:pd.Timestamp(REAL_DAY)]
    user = svc.create_user(engine, "real")
    equity = 1_000_000.0
    pf = svc.create_portfolio(engine, user.id, "nvda", equity)
    svc.add_position(engine, pf["id"], "NVDA", 2000, entry_date=dt.date(2024, 6, 3))
    doc = svc.get_portfolio_risk(engine, pf["id"], REAL_DAY)
    w = 2000 * closes.at[pd.Timestamp(REAL_DAY), "NVDA"] / equity
    window = rets.iloc[-90:]
    expected = {
        "market": _mse_resid(window["NVDA"].to_numpy(), window["SPY"].to_numpy()),
        "rates": _mse_resid(window["NVDA"].to_numpy(), window["TLT"].to_numpy()),
        "style": _ridge_s2(window["NVDA"].to_numpy(), window[list(RIDGE_ETFS)].to_numpy()),
    }
    t = symbol_factor_exposures
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(t.c.factor, t.c.residual_variance)
                                   .where(t.c.symbol == "NVDA", t.c.date == REAL_DAY)).all())
    cov_window = rets.iloc[-252:]
    assert len(cov_window.dropna()) == len(cov_window) - 1  # the files start 2023-08-01: 227 sessions
    for name, factors in GROUPS.items():
        for f in factors:
            assert abs(stored[f] - expected[name]) <= 1e-10, (name, f)
        m = doc["models"][name]
        assert m["specific_variance"] == pytest.approx(w * w * expected[name], rel=1e-9)
        etfs = {"market": ["SPY"], "rates": ["TLT"], "style": list(RIDGE_ETFS)}[name]
        b = np.array([m["exposures"][f] for f in factors])
        implied = cov_window[etfs].dropna().to_numpy() @ b
        assert m["factor_variance"] == pytest.approx(ewma_of(implied), rel=1e-9)
        assert m["covariance_sessions"] == len(implied)
    # NVDA: a high-beta name; the market model's daily volatility in the range practitioners know.
    assert 0.3 < doc["models"]["market"]["volatility_annualised"] / w < 1.0
