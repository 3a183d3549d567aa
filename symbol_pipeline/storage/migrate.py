"""Schema migrations with Alembic: `python -m symbol_pipeline.storage.migrate [revision MESSAGE]`.

Every process that opens the database upgrades it to head first (storage.database.ensure_schema);
on PostgreSQL an advisory lock makes concurrent upgrades wait for each other.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 0x5359_4D42  # "SYMB": one key for every process upgrading this database


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision`, in one transaction."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        command.upgrade(alembic_config(str(engine.url), conn), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


if __name__ == "__main__":
    from symbol_pipeline.config import get_settings

    args = sys.argv[1:]
    url = get_settings().database_url
    if args[:1] == ["revision"]:
        command.revision(alembic_config(url), message=" ".join(args[1:]) or "change", autogenerate=True)
    else:
        from symbol_pipeline.storage.engine import make_engine

        upgrade(make_engine(url))
