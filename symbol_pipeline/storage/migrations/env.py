"""Alembic environment: the project's metadata, and the connection handed in by storage.migrate."""

from alembic import context

from symbol_pipeline.storage.database import all_metadata, comparable

config = context.config
target_metadata = all_metadata()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from sqlalchemy import create_engine

        with create_engine(config.get_main_option("sqlalchemy.url")).begin() as connection:
            _run(connection)
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=comparable(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: use sql/schema.sql for a fresh database")
run_migrations_online()
