"""Opening the project's database: the engine for a URL, tables created or upgraded."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.engine import Engine

from symbol_pipeline.storage import (
    migrate,
    portfolio_schema,  # noqa: F401 - registers the portfolio tables on schema.metadata
    schema,
)
from symbol_pipeline.storage.dialect import cached_engine
from symbol_pipeline.storage.universe import seed_reference_data


def all_metadata() -> MetaData:
    """The metadata with every table of the project registered."""
    return schema.metadata


_READY: set[str] = set()


def ensure_schema(engine: Engine) -> None:
    """Upgrade the schema to the latest migration and seed reference rows.

    Idempotent and safe from concurrent processes; done once per database per process.
    """
    key = engine.url.render_as_string(hide_password=False)
    if key in _READY:
        return
    migrate.upgrade(engine)
    with engine.begin() as conn:
        seed_reference_data(conn)
    _READY.add(key)


def get_engine(url: str, *, create: bool = True) -> Engine:
    """The engine for `url`, its schema upgraded to the latest migration unless create is False."""
    engine = cached_engine(url)
    if create:
        ensure_schema(engine)
    return engine
