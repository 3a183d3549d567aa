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


def ensure_schema(engine: Engine) -> None:
    """Create missing tables and seed reference rows. Idempotent; safe from concurrent processes."""
    from symbol_pipeline.storage.universe import seed_reference_data

    all_metadata().create_all(engine, checkfirst=True)
    with engine.begin() as conn:
        seed_reference_data(conn)


def get_engine(url: str | None = None, *, create: bool = True) -> Engine:
    """The engine for `url` (default: SYMBOL_PIPELINE_DATABASE_URL or the local SQLite file)."""
    engine = cached_engine(url or get_settings().database_url)
    if create:
        ensure_schema(engine)
    return engine
