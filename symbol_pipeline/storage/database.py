"""Opening the project's database: the engine from settings, tables created or upgraded."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from symbol_pipeline.config import get_settings
from symbol_pipeline.storage.engine import cached_engine


def all_metadata():
    """The metadata with every table of the project registered."""
    from symbol_pipeline.storage import schema

    try:  # the portfolio tables register themselves on the same metadata
        from symbol_pipeline.storage import portfolio_schema  # noqa: F401
    except ImportError:
        pass
    return schema.metadata


_READY: set[str] = set()


def ensure_schema(engine: Engine) -> None:
    """Upgrade the schema to the latest migration and seed reference rows.

    Idempotent and safe from concurrent processes; done once per database per process.
    """
    from symbol_pipeline.storage import migrate
    from symbol_pipeline.storage.universe import seed_reference_data

    key = engine.url.render_as_string(hide_password=False)
    if key in _READY:
        return
    migrate.upgrade(engine)
    with engine.begin() as conn:
        seed_reference_data(conn)
    _READY.add(key)


def get_engine(url: str | None = None, *, create: bool = True) -> Engine:
    """The engine for `url` (default: SYMBOL_PIPELINE_DATABASE_URL or the local SQLite file)."""
    engine = cached_engine(url or get_settings().database_url)
    if create:
        ensure_schema(engine)
    return engine
