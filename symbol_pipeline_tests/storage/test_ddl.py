"""The committed PostgreSQL DDL (sql/schema.sql) is the metadata, rendered and applied."""

from pathlib import Path

import sqlalchemy as sa

from symbol_pipeline.storage.database import all_metadata
from symbol_pipeline.storage.ddl import render_postgres_ddl

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
