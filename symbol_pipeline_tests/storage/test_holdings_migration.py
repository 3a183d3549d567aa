"""Migration 0004 on a database with portfolios: existing rows keep their meaning (a position without
an entry date is held since its portfolio was created; the equity applies from the creation)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import command

from symbol_pipeline.storage import migrate


def _upgrade(engine: sa.Engine, revision: str) -> None:
    migrate.upgrade(engine, revision)


def test_existing_positions_and_equity_keep_their_meaning(database_url):
    engine = sa.create_engine(database_url)
    _upgrade(engine, "0003")
    pid = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (name, is_admin) VALUES ('old', false)"))
        conn.execute(sa.text("INSERT INTO portfolios (id, owner_id, name, equity, currency, version, created_at) "
                             "VALUES (:id, 1, 'legacy', 75000, 'USD', 3, :created)"),
                     {"id": pid if engine.dialect.name == "postgresql" else pid.replace("-", ""),
                      "created": dt.datetime(2024, 3, 4, 15, 0, tzinfo=dt.timezone.utc)})
        pid_db = conn.execute(sa.text("SELECT id FROM portfolios")).scalar()
        conn.execute(sa.text("INSERT INTO positions (portfolio_id, symbol, quantity, entry_date) VALUES "
                             "(:p, 'AAA', 100, NULL), (:p, 'BBB', -20, :entry)"), {"p": pid_db, "entry": dt.date(2024, 5, 2)})
    _upgrade(engine, "0004")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT p.symbol, q.effective_date, q.quantity FROM position_quantities q "
                                    "JOIN positions p ON p.id = q.position_id ORDER BY p.symbol")).all()
        equity = conn.execute(sa.text("SELECT effective_date, equity FROM portfolio_equity")).all()
    as_date = [(s, str(d)[:10], q) for s, d, q in rows]
    assert as_date == [("AAA", "2024-03-04", 100.0), ("BBB", "2024-05-02", -20.0)]
    assert [(str(d)[:10], e) for d, e in equity] == [("2024-03-04", 75000.0)]
    with engine.begin() as conn:  # and back: the history tables go, the positions stay
        command.downgrade(migrate.alembic_config(str(engine.url), conn), "0003")
    tables = set(sa.inspect(engine).get_table_names())
    assert "position_quantities" not in tables and "portfolio_equity" not in tables and "positions" in tables
    engine.dispose()
