"""Event-log retention for the instance: `symbol-pipeline events prune --older-than DAYS`."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from symbol_pipeline.storage.event_retention import prune_events


class RetentionUnsupportedError(RuntimeError):
    """The instance's event log is not on PostgreSQL (the SQLite one is sharded per run)."""


def _postgres_engine(instance: dg.DagsterInstance):
    engine = getattr(instance.event_log_storage, "_engine", None)
    if engine is None or engine.dialect.name != "postgresql":
        raise RetentionUnsupportedError(
            "event retention needs the PostgreSQL event log of deploy/dagster.yaml; the local SQLite "
            "instance keeps one database per run (delete data/dagster to start afresh)"
        )
    return engine


def prune_instance_events(instance: dg.DagsterInstance, older_than_days: float) -> dict[str, int]:
    """Prune the instance's event log (storage.event_retention), keeping every partition's status."""
    engine = _postgres_engine(instance)
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=older_than_days)
    with engine.begin() as conn:
        return prune_events(conn, before.replace(tzinfo=None))

