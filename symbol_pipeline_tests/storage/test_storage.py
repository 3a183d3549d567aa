"""Storage: the committed PostgreSQL DDL matches the metadata; upserts are idempotent."""

import datetime as dt
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from symbol_pipeline.storage import prices
from symbol_pipeline.storage.database import all_metadata, get_engine
from symbol_pipeline.storage.ddl import render_postgres_ddl
from symbol_pipeline.storage.schema import symbol_prices_daily

SQL_FILE = Path(__file__).resolve().parents[2] / "sql" / "schema.sql"


def test_committed_ddl_is_the_rendered_metadata():
    assert SQL_FILE.read_text() == render_postgres_ddl(), (
        "sql/schema.sql is stale: run `python -m symbol_pipeline.storage.ddl > sql/schema.sql`"
    )


def _type_name(type_, engine) -> str:
    return str(type_.compile(dialect=engine.dialect)).split("(")[0]


def test_ddl_applied_to_postgres_gives_the_metadata_tables(new_pg_database):
    engine = sa.create_engine(new_pg_database("sp_ddl"))
    with engine.begin() as conn:
        conn.exec_driver_sql(SQL_FILE.read_text())
    inspector = sa.inspect(engine)
    metadata = all_metadata()
    assert set(inspector.get_table_names()) >= set(metadata.tables)
    for table in metadata.sorted_tables:
        reflected = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(reflected) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            got = reflected[column.name]
            assert got["nullable"] == column.nullable, (table.name, column.name)
            assert _type_name(got["type"], engine) == _type_name(column.type, engine), (table.name, column.name)
        pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert sorted(pk) == sorted(c.name for c in table.primary_key.columns), table.name
    engine.dispose()


def _frame(closes):
    return pd.DataFrame(
        {
            "symbol": "AAA",
            "date": [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(len(closes))],
            "open": closes, "high": closes, "low": closes, "close": closes, "adj_close": closes,
            "volume": 1e6, "dividend": 0.0, "split_ratio": 1.0,
        }
    )


def test_price_upsert_is_idempotent_and_keeps_float64(database_url):
    engine = get_engine(database_url)
    closes = [101.123456789012345, 102.000000000000001, 99.87654321]
    for _ in range(2):
        with engine.begin() as conn:
            prices.write_prices(conn, _frame(closes), "test")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(symbol_prices_daily.c.close).order_by(symbol_prices_daily.c.date)).scalars()
        assert list(stored) == closes
        count = conn.execute(sa.select(sa.func.count()).select_from(symbol_prices_daily)).scalar()
    assert count == 3


def test_a_failed_batch_leaves_earlier_rows(database_url):
    engine = get_engine(database_url)
    with engine.begin() as conn:
        prices.write_prices(conn, _frame([10.0, 11.0]), "test")
    bad = _frame([12.0, 13.0])
    bad.loc[1, "close"] = None  # violates NOT NULL: the whole batch must roll back
    try:
        with engine.begin() as conn:
            prices.write_prices(conn, bad, "test")
    except Exception:
        pass
    with engine.connect() as conn:
        stored = list(conn.execute(sa.select(symbol_prices_daily.c.close).order_by(symbol_prices_daily.c.date)).scalars())
    assert stored == [10.0, 11.0]
