"""Portfolios and positions through the service: validation writes nothing; unknown symbols are queued."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.portfolio_schema import portfolio_changes, positions
from symbol_pipeline.storage.schema import symbol_onboarding_queue
from symbol_pipeline_tests.portfolio_data import seed_symbols


@pytest.fixture
def book(engine):
    seed_symbols(engine, {"AAA": {"market_beta": 1.0}}, {"AAA": 10.0})
    user = svc.create_user(engine, "bob")
    return engine, user, svc.create_portfolio(engine, user.id, "b", 1000)


def _count(engine, table):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


@pytest.mark.parametrize("symbol", ["A" * 50, "AB|C", "AB,C", "", "a b"])
def test_bad_symbols_write_nothing(book, symbol):
    engine, _, pf = book
    with pytest.raises(svc.ValidationError):
        svc.add_position(engine, pf["id"], symbol, 1)
    assert _count(engine, positions) == 0


@pytest.mark.parametrize("kwargs", [{"quantity": 0}, {"quantity": "x"}, {"quantity": float("nan")},
                                    {"quantity": 1, "entry_price": -3}, {"quantity": 1, "entry_date": "yesterday"}])
def test_bad_numbers_write_nothing(book, kwargs):
    engine, _, pf = book
    with pytest.raises(svc.ValidationError):
        svc.add_position(engine, pf["id"], "AAA", **kwargs)
    assert _count(engine, positions) == 0


def test_currency_and_ownership(book):
    engine, user, pf = book
    with pytest.raises(svc.ValidationError, match="only USD"):
        svc.create_portfolio(engine, user.id, "eur", 10, currency="EUR")
    other = svc.create_user(engine, "mallory")
    with pytest.raises(svc.NotFoundError):
        svc.add_position(engine, pf["id"], "AAA", 1, owner_id=other.id)
    with pytest.raises(svc.NotFoundError):
        svc.get_portfolio_factor_exposures(engine, "not-a-uuid")


def test_unknown_symbol_is_queued_and_reported_pending(book):
    engine, _, pf = book
    out = svc.add_position(engine, pf["id"], "newco", 5, entry_price=3)
    assert out["pending_symbols"] == ["NEWCO"]
    again = svc.add_position(engine, pf["id"], "NEWCO", 1, entry_price=3)
    assert again["pending_symbols"] == ["NEWCO"]  # still pending, not queued twice
    assert svc.add_position(engine, pf["id"], "AAA", 1)["pending_symbols"] == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(symbol_onboarding_queue.c.symbol)).scalars().all() == ["NEWCO"]


def test_update_close_list_and_change_log(book):
    engine, _, pf = book
    pos = svc.add_position(engine, pf["id"], "AAA", 5, entry_date="2024-06-03")["position"]
    assert svc.update_position(engine, pos["id"], quantity=-7, effective_date="2024-06-20")["quantity"] == -7
    closed = svc.close_position(engine, pos["id"], exit_date="2024-07-01", exit_price=11)
    assert closed["exit_date"] == "2024-07-01"
    with pytest.raises(svc.ConflictError, match="already closed"):
        svc.close_position(engine, pos["id"])
    assert svc.list_positions(engine, pf["id"]) == []
    assert len(svc.list_positions(engine, pf["id"], include_closed=True)) == 1
    kinds = [k for _, _, k in svc.changes_after(engine, 0)]
    assert kinds == ["portfolio_created", "positions_added", "position_updated", "position_closed"]


def test_csv_import_is_all_or_nothing(book):
    engine, _, pf = book
    good = "symbol,quantity,entry_price\nAAA,10,9.5\nZZZ,-3,\n"
    out = svc.import_positions_csv(engine, pf["id"], good)
    assert [p["symbol"] for p in out["positions"]] == ["AAA", "ZZZ"] and out["pending_symbols"] == ["ZZZ"]
    before = _count(engine, positions), _count(engine, portfolio_changes)
    with pytest.raises(svc.ValidationError, match="row 2"):
        svc.import_positions_csv(engine, pf["id"], "symbol,quantity\nAAA,1\nA|B,2\n")
    with pytest.raises(svc.ValidationError, match="header"):
        svc.import_positions_csv(engine, pf["id"], "ticker,qty\nAAA,1\n")
    assert (_count(engine, positions), _count(engine, portfolio_changes)) == before
