"""Migration 0007 on rows stored before the input rules of issue 18: dates before the exchange
calendar's first session move to it, keeping what every servable date holds, and queued symbols
the rules refuse are rejected so that no onboarding run fetches them."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage import migrate

FIRST = dt.date(1995, 1, 3)
PID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"


def _day(value) -> str:
    return str(value)[:10]


def _legacy_rows(engine: sa.Engine) -> str:
    """A portfolio, positions and queue rows as the API accepted them before the rules; its id."""
    d = dt.date
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (name, is_admin) VALUES ('old', false)"))
        conn.execute(sa.text("INSERT INTO portfolios (id, owner_id, name, equity, currency, version) "
                             "VALUES (:id, 1, 'legacy', 300, 'USD', 1)"),
                     {"id": PID if engine.dialect.name == "postgresql" else PID.replace("-", "")})
        pid = conn.execute(sa.text("SELECT id FROM portfolios")).scalar()
        for day, equity in ((d(1900, 1, 1), 100), (d(1990, 1, 1), 200), (d(2024, 6, 3), 300)):
            conn.execute(sa.text("INSERT INTO portfolio_equity (portfolio_id, effective_date, equity) VALUES (:p, :d, :e)"),
                         {"p": pid, "d": day, "e": equity})
        positions = {  # symbol: (entry, exit, [(effective date, quantity), ...])
            "AAA": (d(1, 1, 1), None, [(d(1, 1, 1), 5), (d(1980, 1, 1), 7), (d(2024, 6, 10), 9)]),
            "BBB": (d(1, 1, 1), d(1990, 1, 1), [(d(1, 1, 1), 3)]),
            "CCC": (d(1990, 1, 1), None, [(d(1990, 1, 1), 4), (FIRST, 6)]),
            "DDD": (d(2024, 6, 3), None, [(d(2024, 6, 3), 2)]),
        }
        for symbol, (entry, exit_, rows) in positions.items():
            conn.execute(sa.text("INSERT INTO positions (portfolio_id, symbol, quantity, entry_date, exit_date) "
                                 "VALUES (:p, :s, :q, :e, :x)"),
                         {"p": pid, "s": symbol, "q": rows[-1][1], "e": entry, "x": exit_})
            position = conn.execute(sa.text("SELECT max(id) FROM positions")).scalar()
            for day, quantity in rows:
                conn.execute(sa.text("INSERT INTO position_quantities (position_id, effective_date, quantity) "
                                     "VALUES (:i, :d, :q)"), {"i": position, "d": day, "q": quantity})
        for symbol in ("=CMD", "....", "NEWCO"):
            conn.execute(sa.text("INSERT INTO symbol_universe (symbol, status) VALUES (:s, 'pending')"), {"s": symbol})
            conn.execute(sa.text("INSERT INTO symbol_onboarding_queue (symbol, status, requested_by, priority) "
                                 "VALUES (:s, 'pending', 'api:old', 1)"), {"s": symbol})
    return str(pid)


def test_rows_before_the_first_session_move_to_it_and_refused_symbols_are_rejected(database_url):
    engine = sa.create_engine(database_url)
    migrate.upgrade(engine, "0006")
    _legacy_rows(engine)
    migrate.upgrade(engine, "0007")
    with engine.connect() as conn:
        equity = conn.execute(sa.text("SELECT effective_date, equity FROM portfolio_equity ORDER BY effective_date")).all()
        quantities = conn.execute(sa.text(
            "SELECT p.symbol, q.effective_date, q.quantity FROM position_quantities q JOIN positions p "
            "ON p.id = q.position_id ORDER BY p.symbol, q.effective_date")).all()
        dates = conn.execute(sa.text("SELECT symbol, entry_date, exit_date FROM positions ORDER BY symbol")).all()
        universe = dict(conn.execute(sa.text("SELECT symbol, status FROM symbol_universe")).all())
        queue = dict(conn.execute(sa.text("SELECT symbol, status FROM symbol_onboarding_queue")).all())
    assert [(_day(d), e) for d, e in equity] == [("1995-01-03", 200.0), ("2024-06-03", 300.0)]
    assert [(s, _day(d), q) for s, d, q in quantities] == [
        ("AAA", "1995-01-03", 7.0), ("AAA", "2024-06-10", 9.0),  # the row in force on the first session
        ("BBB", "1995-01-03", 3.0), ("CCC", "1995-01-03", 6.0), ("DDD", "2024-06-03", 2.0)]
    assert [(s, _day(e), x and _day(x)) for s, e, x in dates] == [
        ("AAA", "1995-01-03", None), ("BBB", "1995-01-03", "1995-01-03"), ("CCC", "1995-01-03", None),
        ("DDD", "2024-06-03", None)]
    assert universe == {"=CMD": "error", "....": "error", "NEWCO": "pending"}
    assert queue == {"=CMD": "failed", "....": "failed", "NEWCO": "pending"}
    engine.dispose()


def test_what_the_repaired_portfolio_holds_on_the_first_session(database_url):
    engine = sa.create_engine(database_url)
    migrate.upgrade(engine, "0006")
    pid = _legacy_rows(engine)
    migrate.upgrade(engine, "head")
    quantities, equity = svc.holdings_as_of(engine, pid, FIRST)
    assert quantities.to_dict() == {"AAA": 7.0, "CCC": 6.0} and equity == 200.0  # BBB closed before it
    docs, total = svc.page_of_positions(engine, pid, dt.date(2024, 6, 28))
    assert total == 3 and {d["symbol"]: d["quantity"] for d in docs} == {"AAA": 9.0, "CCC": 6.0, "DDD": 2.0}
    engine.dispose()
