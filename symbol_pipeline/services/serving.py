"""The database as the HTTP API uses it: the schema upgraded once, then an engine sized for the
server's worker threads; and which errors mean the database is unavailable rather than wrong."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from symbol_pipeline.storage.database import Outage, get_engine, outage
from symbol_pipeline.storage.dialect import SERVING_THREADS, serving_engine

__all__ = ["SERVING_THREADS", "Outage", "open_serving_engine", "outage"]


def open_serving_engine(database_url: str) -> Engine:
    """Create or upgrade the tables at `database_url`, then return the API's engine for it."""
    get_engine(database_url)
    return serving_engine(database_url)
