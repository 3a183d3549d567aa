"""The analytics cache: hit, miss, expiry and every invalidation path."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.services.portfolio.documents import dumps
from symbol_pipeline.storage.portfolio_schema import portfolio_analytics_cache
from symbol_pipeline_tests.portfolio_data import seed_symbols


@pytest.fixture
def cached(engine):
    seed_symbols(engine, {"AAA": {"market_beta": 1.0}, "BBB": {"market_beta": 2.0}}, {"AAA": 10.0, "BBB": 20.0})
    user = svc.create_user(engine, "carol")
    pf = svc.create_portfolio(engine, user.id, "c", 1000)
    other = svc.create_portfolio(engine, user.id, "other", 1000)
    pos = svc.add_position(engine, pf["id"], "AAA", 10)["position"]
    svc.add_position(engine, other["id"], "BBB", 10)
    for p in (pf, other):
        assert svc.portfolio_factor_exposures_json(engine, p["id"])[1] is False
        assert svc.portfolio_factor_exposures_json(engine, p["id"])[1] is True
    return engine, pf, other, pos


def _hit(engine, pf):
    return svc.portfolio_factor_exposures_json(engine, pf["id"])[1]


def _rows(engine, pf):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(portfolio_analytics_cache)
                            .where(portfolio_analytics_cache.c.portfolio_id == pf["id"])).scalar()


def test_expiry(cached):
    engine, pf, _, _ = cached
    svc.invalidate_portfolio_cache(engine, pf["id"])
    svc.portfolio_factor_exposures_json(engine, pf["id"], ttl=dt.timedelta(seconds=-1))  # stored already expired
    assert _hit(engine, pf) is False
    assert _hit(engine, pf) is True


@pytest.mark.parametrize("change", ["add", "update", "close", "import", "equity"])
def test_each_position_change_invalidates_only_that_portfolio(cached, change):
    engine, pf, other, pos = cached
    if change == "add":
        svc.add_position(engine, pf["id"], "BBB", 1)
    elif change == "update":
        svc.update_position(engine, pos["id"], quantity=11)
    elif change == "close":
        svc.close_position(engine, pos["id"])
    elif change == "import":
        svc.import_positions_csv(engine, pf["id"], "symbol,quantity\nBBB,2\n")
    else:
        svc.set_equity(engine, pf["id"], 2000)
    assert _rows(engine, pf) == 0  # deleted in the change's own transaction
    assert _hit(engine, other) is True
    assert _hit(engine, pf) is False


def test_new_prices_change_the_key(cached):
    engine, pf, _, _ = cached
    seed_symbols(engine, {}, {"AAA": 11.0}, date=dt.date(2024, 7, 1))
    assert _hit(engine, pf) is False


def test_invalidate_all_after_daily_run(cached):
    engine, pf, other, _ = cached
    assert svc.invalidate_all_caches(engine) >= 2
    assert _hit(engine, pf) is False and _hit(engine, other) is False


def test_batch_fills_the_cache(cached):
    engine, pf, other, _ = cached
    svc.invalidate_all_caches(engine)
    svc.compute_portfolio_exposures(engine, [pf["id"]])
    assert _hit(engine, pf) is True and _hit(engine, other) is False


def test_a_change_bumps_the_version_so_a_stale_entry_is_never_hit(cached):
    engine, pf, _, pos = cached
    text, hit = svc.portfolio_factor_exposures_json(engine, pf["id"])
    assert hit is True
    with engine.connect() as conn:
        old_key = conn.execute(sa.select(portfolio_analytics_cache.c.cache_key)
                               .where(portfolio_analytics_cache.c.portfolio_id == pf["id"])).scalar_one()
    svc.update_position(engine, pos["id"], quantity=20)
    # Put the pre-change document back, as a computation racing the change would: it must not be served.
    with engine.begin() as conn:
        conn.execute(portfolio_analytics_cache.insert().values(
            portfolio_id=pf["id"], cache_type=svc.CACHE_EXPOSURES, cache_key=old_key, data=text,
            valid_until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)))
    fresh, hit = svc.portfolio_factor_exposures_json(engine, pf["id"])
    assert hit is False and fresh != text
    assert svc.get_portfolio_factor_exposures(engine, pf["id"])["factors"]["market_beta"]["beta"] == 20 * 10.0 / 1000
    assert svc.portfolio_factor_exposures_json(engine, pf["id"]) == (fresh, True)


def test_batch_text_is_canonical_json(cached):
    engine, pf, _, _ = cached
    batch = svc.compute_portfolio_exposures(engine)
    for pid, text in batch.texts.items():
        assert dumps(json.loads(text)) == text
        assert batch.documents[pid] == json.loads(text)
    assert batch.documents[pf["id"]]["factors"]["market_beta"] == {
        "beta": 0.1, "dollar_exposure": 100.0, "coverage": 1.0, "missing_symbols": []}
    assert batch.documents[pf["id"]]["factors"]["ir_beta"]["missing_symbols"] == ["AAA"]
