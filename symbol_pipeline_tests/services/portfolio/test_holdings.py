"""Holdings at a date (docs/methodology.md): effective-dated quantities and equity, splits, closes,
first dates, and every change logged, versioned and invalidating only its portfolio's caches."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from symbol_pipeline.lib.sessions import sessions_between
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.services.portfolio.holdings import split_factors
from symbol_pipeline.storage.portfolio_schema import (
    portfolio_analytics_cache,
    portfolio_changes,
    portfolio_equity,
    position_quantities,
    positions,
)
from symbol_pipeline_tests.portfolio_data import seed_market

D = dt.date
DAYS = [d.date() for d in sessions_between("2024-06-03", "2024-06-28")]
SPLIT_DAY = D(2024, 6, 10)


@pytest.fixture
def book(engine):
    """AAA splits 10-for-1 on 2024-06-10. Position 1: 100 AAA from 06-03, 150 from 06-12 (in shares of
    06-12); position 2: −50 BBB from 06-05, closed 06-20; position 3: 20 AAA from 06-11.
    Equity 1,000 from creation (today), 50,000 from 06-07."""
    seed_market(engine, ["AAA", "BBB"], DAYS, splits={("AAA", SPLIT_DAY): 10.0}, beta_gaps=0)
    user = svc.create_user(engine, "hana")
    pf = svc.create_portfolio(engine, user.id, "dated", 1000)
    p1 = svc.add_position(engine, pf["id"], "AAA", 100, entry_date="2024-06-03")["position"]
    p2 = svc.add_position(engine, pf["id"], "BBB", -50, entry_date=D(2024, 6, 5))["position"]
    svc.add_position(engine, pf["id"], "AAA", 20, entry_date="2024-06-11")
    svc.update_position(engine, p1["id"], quantity=150, effective_date="2024-06-12")
    svc.close_position(engine, p2["id"], exit_date="2024-06-20")
    svc.set_equity(engine, pf["id"], 50_000, effective_date="2024-06-07")
    return engine, user, pf


@pytest.mark.parametrize("day, quantities, equity", [
    (D(2024, 6, 3), {"AAA": 100.0}, 50_000.0),                      # the first equity applies from the first date
    (D(2024, 6, 7), {"AAA": 100.0, "BBB": -50.0}, 50_000.0),
    (D(2024, 6, 10), {"AAA": 1000.0, "BBB": -50.0}, 50_000.0),      # 100 shares of 06-03 are 1,000 after the split
    (D(2024, 6, 11), {"AAA": 1020.0, "BBB": -50.0}, 50_000.0),      # positions of a symbol are summed
    (D(2024, 6, 12), {"AAA": 170.0, "BBB": -50.0}, 50_000.0),       # 150 recorded on 06-12 is in shares of 06-12
    (D(2024, 6, 19), {"AAA": 170.0, "BBB": -50.0}, 50_000.0),
    (D(2024, 6, 20), {"AAA": 170.0}, 50_000.0),                     # closed on 06-20: not held on 06-20
])
def test_holdings_as_of_known_answers(book, day, quantities, equity):
    engine, _, pf = book
    held, eq = svc.holdings_as_of(engine, pf["id"], day)
    assert held.to_dict() == quantities and eq == equity
    with engine.connect() as conn:  # a connection works as well as an engine
        assert svc.holdings_as_of(conn, pf["id"], day)[0].to_dict() == quantities


def test_today_and_out_of_range_dates(book):
    engine, user, pf = book
    held, equity = svc.holdings_as_of(engine, pf["id"])
    assert held.to_dict() == {"AAA": 170.0} and equity == 1000.0  # the creation row applies from today
    with pytest.raises(svc.DateOutOfRangeError, match="2024-06-02.*first date is 2024-06-03"):
        svc.holdings_as_of(engine, pf["id"], D(2024, 6, 2))
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    with pytest.raises(svc.DateOutOfRangeError, match=f"{tomorrow}.*future"):
        svc.holdings_as_of(engine, pf["id"], tomorrow)
    with pytest.raises(svc.DateOutOfRangeError, match="2024-06-02"):
        svc.get_portfolio_factor_exposures(engine, pf["id"], as_of=D(2024, 6, 2))
    with pytest.raises(svc.NotFoundError):
        svc.holdings_as_of(engine, pf["id"], D(2024, 6, 5), owner_id=user.id + 1)


def test_book_of_many_dates_equals_each_date(book):
    """The vectorised read of all sessions agrees with holdings_as_of date by date."""
    engine, _, pf = book
    with engine.connect() as conn:
        many = svc.read_book(conn, [pf["id"]], DAYS)
    for t, day in enumerate(DAYS):
        frame = many.frame(t)
        per_symbol = frame.groupby("symbol")["quantity"].sum().sort_index().to_dict()
        held, equity = svc.holdings_as_of(engine, pf["id"], day)
        assert per_symbol == held.to_dict() and many.equity[0, t] == equity


def test_exposures_use_the_holdings_of_as_of(book):
    engine, _, pf = book
    with engine.connect() as conn:
        closes = dict(conn.execute(sa.text("SELECT symbol, close FROM symbol_prices_daily WHERE date = :d"),
                                   {"d": SPLIT_DAY}).all())
        betas = dict(conn.execute(sa.text("SELECT symbol, beta FROM symbol_factor_exposures "
                                          "WHERE date = :d AND factor = 'market_beta'"), {"d": SPLIT_DAY}).all())
    doc = svc.get_portfolio_factor_exposures(engine, pf["id"], as_of=SPLIT_DAY)
    mv = {"AAA": 1000 * closes["AAA"], "BBB": -50 * closes["BBB"]}
    assert doc["gross_exposure"] == pytest.approx(abs(mv["AAA"]) + abs(mv["BBB"]), rel=1e-12)
    assert doc["equity"] == 50_000 and doc["positions"] == 2
    assert doc["factors"]["market_beta"]["beta"] == pytest.approx(
        (mv["AAA"] * betas["AAA"] + mv["BBB"] * betas["BBB"]) / 50_000, rel=1e-12)
    batch = svc.compute_portfolio_exposures(engine, [pf["id"]], as_of=SPLIT_DAY, store_results=False)
    assert batch.documents[pf["id"]]["factors"] == doc["factors"]


def test_sessions_before_any_beta_have_null_betas(engine):
    seed_market(engine, ["CCC"], DAYS, betas_from=5, beta_gaps=0)
    user = svc.create_user(engine, "ivy")
    pf = svc.create_portfolio(engine, user.id, "early", 1000)
    svc.add_position(engine, pf["id"], "CCC", 10, entry_date=DAYS[0])
    early = svc.get_portfolio_factor_exposures(engine, pf["id"], as_of=DAYS[2])
    assert early["betas_date"] is None and early["factors"]["market_beta"]["beta"] is None
    assert early["gross_exposure"] > 0
    later = svc.get_portfolio_factor_exposures(engine, pf["id"], as_of=DAYS[6])
    assert later["factors"]["market_beta"]["beta"] is not None


def _count(engine, table, **where):
    with engine.connect() as conn:
        stmt = sa.select(sa.func.count()).select_from(table)
        for column, value in where.items():
            stmt = stmt.where(table.c[column] == value)
        return conn.execute(stmt).scalar()


def test_changes_are_appended_never_overwritten(book):
    engine, _, pf = book
    pos = svc.page_of_positions(engine, pf["id"], D(2024, 6, 12))[0]
    first = next(p for p in pos if p["recorded_quantity"] == 150)
    assert first["quantity_date"] == "2024-06-12" and first["quantity"] == 150
    history = svc.quantity_history(engine, first["id"])["quantity_history"]
    assert [(h["effective_date"], h["quantity"]) for h in history] == [("2024-06-03", 100.0), ("2024-06-12", 150.0)]
    assert [e["effective_date"] for e in svc.get_portfolio(engine, pf["id"])["equity_history"]] == [
        "2024-06-07", dt.date.today().isoformat()]
    with pytest.raises(svc.ValidationError, match="before the position's entry date"):
        svc.update_position(engine, first["id"], quantity=5, effective_date="2024-06-01")
    with pytest.raises(svc.DateOutOfRangeError, match="future"):
        svc.update_position(engine, first["id"], quantity=5, effective_date=dt.date.today() + dt.timedelta(days=2))
    with pytest.raises(svc.ValidationError, match="entry_date 2024-06-13 is after the quantity change"):
        svc.update_position(engine, first["id"], entry_date="2024-06-13")
    svc.update_position(engine, first["id"], entry_date="2024-06-04")  # a correction moves the first row
    with pytest.raises(svc.DateOutOfRangeError, match="first date is 2024-06-04"):  # it was the first date
        svc.holdings_as_of(engine, pf["id"], D(2024, 6, 3))
    assert svc.holdings_as_of(engine, pf["id"], D(2024, 6, 4))[0].to_dict() == {"AAA": 100.0}


def test_each_change_invalidates_only_its_portfolio_and_is_logged(book):
    engine, user, pf = book
    other = svc.create_portfolio(engine, user.id, "other", 1000)
    svc.add_position(engine, other["id"], "BBB", 3, entry_date="2024-06-03")
    pos = svc.page_of_positions(engine, pf["id"])[0][0]
    changes = [
        lambda: svc.update_position(engine, pos["id"], quantity=7, effective_date="2024-06-25"),
        lambda: svc.set_equity(engine, pf["id"], 60_000, effective_date="2024-06-14"),
        lambda: svc.import_positions_json(engine, pf["id"], '[{"symbol": "BBB", "quantity": 2}]'),
        lambda: svc.close_position(engine, pos["id"], exit_date="2024-06-27"),
    ]
    for change in changes:
        for p in (pf, other):
            svc.portfolio_factor_exposures_json(engine, p["id"], D(2024, 6, 26))
            svc.exposure_history_json(engine, p["id"], end=D(2024, 6, 28))
        before = _count(engine, portfolio_changes, portfolio_id=pf["id"])
        change()
        assert _count(engine, portfolio_analytics_cache, portfolio_id=pf["id"]) == 0
        assert _count(engine, portfolio_analytics_cache, portfolio_id=other["id"]) == 2
        assert _count(engine, portfolio_changes, portfolio_id=pf["id"]) == before + 1
        assert svc.portfolio_factor_exposures_json(engine, other["id"], D(2024, 6, 26))[1] is True


def test_delete_takes_the_history_with_it(book):
    engine, user, pf = book
    other = svc.create_portfolio(engine, user.id, "kept", 1000)
    svc.add_position(engine, other["id"], "BBB", 3)
    svc.portfolio_factor_exposures_json(engine, pf["id"])
    svc.compute_portfolio_exposures(engine)
    kept = (_count(engine, positions), _count(engine, position_quantities), _count(engine, portfolio_equity))
    with pytest.raises(svc.NotFoundError):
        svc.delete_portfolio(engine, pf["id"], owner_id=user.id + 1)
    svc.delete_portfolio(engine, pf["id"], owner_id=user.id)
    assert (_count(engine, positions), _count(engine, position_quantities), _count(engine, portfolio_equity)) == (
        kept[0] - 3, kept[1] - 4, kept[2] - 2)
    assert _count(engine, portfolio_analytics_cache, portfolio_id=pf["id"]) == 0
    assert [k for _, p, k in svc.changes_after(engine, 0) if p == pf["id"]][-1] == "portfolio_deleted"
    with pytest.raises(svc.NotFoundError):
        svc.holdings_as_of(engine, pf["id"])
    assert svc.holdings_as_of(engine, other["id"])[0].to_dict() == {"BBB": 3.0}


def test_json_import_is_all_or_nothing(book):
    engine, _, pf = book
    before = _count(engine, positions), _count(engine, position_quantities), _count(engine, portfolio_changes)
    for bad in ('[{"symbol": "AAA", "quantity": 1}, {"symbol": "A|B", "quantity": 2}]', '{"rows": []}', "nope",
                '[{"symbol": "AAA", "quantity": 1, "entry_date": "2999-01-01"}]'):
        with pytest.raises(svc.ValidationError):
            svc.import_positions_json(engine, pf["id"], bad)
    assert (_count(engine, positions), _count(engine, position_quantities), _count(engine, portfolio_changes)) == before
    out = svc.import_positions_json(engine, pf["id"], '{"positions": [{"symbol": "AAA", "quantity": "4", '
                                                      '"entry_date": "2024-06-14"}]}')
    assert out["positions"][0]["entry_date"] == "2024-06-14"
    assert svc.holdings_as_of(engine, pf["id"], D(2024, 6, 14))[0]["AAA"] == 174.0


def test_split_factors_kernel():
    splits = pd.DataFrame({"symbol": ["A", "A", "B"], "date": [D(2024, 1, 5), D(2024, 3, 1), D(2024, 2, 1)],
                           "split_ratio": [2.0, 3.0, 0.1]})
    numbers = pd.to_datetime(pd.Series([D(2024, 1, 1), D(2024, 1, 5), D(2024, 3, 1), D(2024, 12, 31)])
                             ).to_numpy(dtype="datetime64[D]").astype(np.int64)
    after = numbers[[0, 0, 1, 0, 3]]
    until = numbers[[1, 3, 3, 3, 3]]
    got = split_factors(splits, np.array(["A", "A", "A", "B", "C"], dtype=object), after, until)
    assert got.tolist() == [2.0, 6.0, 3.0, 0.1, 1.0]
