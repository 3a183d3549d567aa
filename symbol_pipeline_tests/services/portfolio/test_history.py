"""The exposure history: for every session, the figures of the point-in-time document of that date."""

from __future__ import annotations

import datetime as dt

import pytest

from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.lib.sessions import sessions_between
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.services.portfolio.history import CSV_COLUMNS
from symbol_pipeline_tests.portfolio_data import seed_market

DAYS = [d.date() for d in sessions_between("2024-05-01", "2024-06-28")]


@pytest.fixture
def market(engine):
    """Five symbols over 41 sessions: a 2-for-1 and a 1-for-4 split, sessions without betas, NULL
    betas, no betas at all for the first five sessions, and one symbol whose prices start late."""
    seed_market(engine, ["AAA", "BBB", "CCC", "DDD"], DAYS, betas_from=5, beta_gaps=0.15,
                splits={("AAA", DAYS[12]): 2.0, ("CCC", DAYS[30]): 0.25})
    seed_market(engine, ["LATE"], DAYS[20:], seed=4)
    user = svc.create_user(engine, "jun")
    pf = svc.create_portfolio(engine, user.id, "history", 200_000)
    a = svc.add_position(engine, pf["id"], "AAA", 300, entry_date=DAYS[0])["position"]
    svc.add_position(engine, pf["id"], "BBB", -400, entry_date=DAYS[3])
    c = svc.add_position(engine, pf["id"], "CCC", 1000, entry_date=DAYS[8])["position"]
    svc.add_position(engine, pf["id"], "AAA", 50, entry_date=DAYS[15])
    svc.add_position(engine, pf["id"], "LATE", 100, entry_price=12.5, entry_date=DAYS[10])  # unpriced until day 20
    svc.add_position(engine, pf["id"], "NEWCO", 10, entry_price=3.0, entry_date=DAYS[2])    # never priced
    svc.update_position(engine, a["id"], quantity=500, effective_date=DAYS[18])
    svc.close_position(engine, c["id"], exit_date=DAYS[35])
    svc.set_equity(engine, pf["id"], 150_000, effective_date=DAYS[0])
    svc.set_equity(engine, pf["id"], -5_000, effective_date=DAYS[24])   # no weights exist: betas null
    svc.set_equity(engine, pf["id"], 120_000, effective_date=DAYS[26])
    return engine, user, pf


def _same(history_value, document_value):
    if document_value is None:
        return history_value is None
    return history_value == pytest.approx(document_value, rel=1e-12, abs=1e-15)


def test_every_session_equals_the_document_of_that_date(market):
    engine, _, pf = market
    doc = svc.exposure_history(engine, pf["id"], start=DAYS[0], end=DAYS[-1])
    assert doc["sessions"] == [d.isoformat() for d in DAYS]
    assert doc["start"] == DAYS[0].isoformat() and doc["end"] == DAYS[-1].isoformat()
    nulls = 0
    for t, day in enumerate(DAYS):
        try:
            point = svc.get_portfolio_factor_exposures(engine, pf["id"], as_of=day)
        except svc.NonPositiveEquityError:  # the document is an error: the history has no betas
            assert all(doc["factors"][f][t] is None for f in FACTOR_NAMES), day
            nulls += 1
            continue
        assert _same(doc["gross_exposure"][t], point["gross_exposure"]), day
        assert _same(doc["net_exposure"][t], point["net_exposure"]), day
        for f in FACTOR_NAMES:
            assert _same(doc["factors"][f][t], point["factors"][f]["beta"]), (day, f)
            assert _same(doc["coverage"][f][t], point["factors"][f]["coverage"]), (day, f)
    assert nulls == 2
    assert all(doc["factors"]["market_beta"][t] is None for t in range(5))  # before the first betas
    assert all(v is not None for v in doc["factors"]["market_beta"][5:24])


def test_default_range_is_clipped_to_the_first_date_and_cached(market):
    engine, user, pf = market
    data, hit = svc.exposure_history_json(engine, pf["id"], end=DAYS[-1])
    assert hit is False and svc.exposure_history_json(engine, pf["id"], end=DAYS[-1]) == (data, True)
    doc = svc.exposure_history(engine, pf["id"], end=DAYS[-1])
    assert doc["sessions"][0] == DAYS[0].isoformat() and len(doc["sessions"]) == len(DAYS)
    short = svc.exposure_history(engine, pf["id"], start=DAYS[10], end=DAYS[12])
    assert short["sessions"] == [d.isoformat() for d in DAYS[10:13]]
    for start, end, message in ((DAYS[0] - dt.timedelta(days=1), DAYS[5], "before portfolio"),
                                (DAYS[5], DAYS[2], "after end"),
                                (None, dt.date.today() + dt.timedelta(days=3), "future")):
        with pytest.raises(svc.ValidationError, match=message):
            svc.exposure_history(engine, pf["id"], start=start, end=end)
    with pytest.raises(svc.NotFoundError):
        svc.exposure_history(engine, pf["id"], owner_id=user.id + 1)


def test_csv_is_one_line_per_session(market):
    engine, _, pf = market
    doc = svc.exposure_history(engine, pf["id"], start=DAYS[0], end=DAYS[-1])
    lines = svc.exposure_history_csv(doc).splitlines()
    assert lines[0].split(",") == CSV_COLUMNS and len(CSV_COLUMNS) == 3 + 2 * len(FACTOR_NAMES)
    assert len(lines) == 1 + len(DAYS)
    first, later = lines[1].split(","), lines[10].split(",")
    assert first[0] == DAYS[0].isoformat() and first[3] == ""  # no betas yet: an empty field
    assert float(later[3]) == doc["factors"]["market_beta"][9]  # full precision
    assert float(later[1]) == doc["gross_exposure"][9]
