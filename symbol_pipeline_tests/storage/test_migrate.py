"""Alembic migrations: a fresh database upgrades to exactly the metadata, on both backends."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from symbol_pipeline.storage import migrate
from symbol_pipeline.storage.database import all_metadata, comparable, get_engine


def test_upgrade_to_head_matches_the_metadata(database_url):
    engine = get_engine(database_url)  # runs the migrations
    assert migrate.current_revision(engine) is not None
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_object": comparable(conn.dialect.name)}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), all_metadata())
    assert diff == [], "the metadata changed without a migration: python -m symbol_pipeline.storage.migrate DATABASE_URL revision MESSAGE"


def test_upgrading_twice_changes_nothing(database_url):
    engine = sa.create_engine(database_url)
    migrate.upgrade(engine)
    tables = set(sa.inspect(engine).get_table_names())
    migrate.upgrade(engine)
    assert set(sa.inspect(engine).get_table_names()) == tables
    assert "alembic_version" in tables
    engine.dispose()
