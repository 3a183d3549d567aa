"""Schema migrations with Alembic: `python -m symbol_pipeline.storage.migrate DATABASE_URL [revision MESSAGE]`.

Every process that opens the database upgrades it to head first (storage.database.ensure_schema);
on PostgreSQL an advisory lock makes concurrent upgrades wait for each other.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, Engine

from symbol_pipeline.storage.dialect import is_postgres, make_engine

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
        if is_postgres(conn):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        command.upgrade(alembic_config(str(engine.url), conn), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def main(argv: list[str]) -> int:
    """`DATABASE_URL`: upgrade that database to head; `DATABASE_URL revision MESSAGE`: autogenerate a
    migration from the difference between the metadata and that database."""
    if not argv:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    url, args = argv[0], argv[1:]
    if args[:1] == ["revision"]:
        command.revision(alembic_config(url), message=" ".join(args[1:]) or "change", autogenerate=True)
    else:
        upgrade(make_engine(url))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
