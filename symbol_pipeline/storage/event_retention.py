"""Retention for Dagster's event log on PostgreSQL, without turning a stored partition "missing".

Dagster's partition status is derived from the event log: a partition is materialised while
some ASSET_MATERIALIZATION event of it remains. Deleting old runs (`instance.delete_run`) deletes
their materialisations, so a partition materialised once, long ago, would become missing. This
prunes only what no status depends on, for events older than a cutoff:

- materialisations of a partition that a later materialisation of the same partition superseded
  (the latest one per asset and partition is always kept, with its tags);
- the step, log and planning events of runs that ended before the cutoff (kept: run lifecycle
  events, asset events that are the latest of their partition, asset check evaluations).

It speaks SQL to Dagster's own tables, so it lives here; `runs.retention` gives it the engine.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Run lifecycle events: the run's status is kept whatever its age.
_RUN_EVENTS = ("PIPELINE_START", "PIPELINE_SUCCESS", "PIPELINE_FAILURE", "PIPELINE_CANCELED", "PIPELINE_ENQUEUED",
               "PIPELINE_DEQUEUED", "PIPELINE_STARTING", "PIPELINE_CANCELING", "RUN_ENQUEUED")
_KEPT_TYPES = (*_RUN_EVENTS, "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION", "ASSET_OBSERVATION")


def prune_events(conn: Connection, before: dt.datetime) -> dict[str, int]:
    """Delete superseded materialisations and finished runs' step events older than `before`."""
    superseded = sa.text(
        """
        DELETE FROM event_logs e
        USING (
            SELECT id FROM (
                SELECT id, row_number() OVER (PARTITION BY asset_key, partition ORDER BY id DESC) AS newer
                FROM event_logs
                WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND partition IS NOT NULL
            ) ranked WHERE newer > 1
        ) old
        WHERE e.id = old.id AND e.timestamp < :before
        """
    )
    chatter = sa.text(
        """
        DELETE FROM event_logs e
        WHERE e.timestamp < :before
          AND (e.dagster_event_type IS NULL OR e.dagster_event_type NOT IN :kept)
          AND e.run_id IN (SELECT run_id FROM runs WHERE status IN ('SUCCESS', 'FAILURE', 'CANCELED')
                           AND update_timestamp < :before)
        """
    ).bindparams(sa.bindparam("kept", expanding=True))
    orphan_tags = sa.text(
        "DELETE FROM asset_event_tags t WHERE NOT EXISTS (SELECT 1 FROM event_logs e WHERE e.id = t.event_id)"
    )
    removed = {
        "superseded_materialisations": conn.execute(superseded, {"before": before}).rowcount,
        "step_and_log_events": conn.execute(chatter, {"before": before, "kept": list(_KEPT_TYPES)}).rowcount,
    }
    removed["orphaned_tags"] = conn.execute(orphan_tags).rowcount
    return removed



# --- the window's retention (issue 17): what lies before the first date partition goes -----------
# Partition keys of the date-partitioned assets start with the session ("2026-11-06|AAPL" or
# "2026-11-06"), so "before the first date" is one string comparison, on both SQLite and PostgreSQL.


def prune_before_window(conn: Connection, asset_keys: list[str], first_date: dt.date) -> dict[str, int]:
    """Delete every event of `asset_keys` (serialised AssetKeys) whose partition is before
    `first_date`, with its asset-event tags. Other assets (the portfolio ones) are untouched."""
    if not asset_keys:
        return {"partition_events": 0, "partition_event_tags": 0}
    where = "asset_key IN :keys AND partition IS NOT NULL AND partition < :first"
    params = {"keys": asset_keys, "first": first_date.isoformat()}
    tags = sa.text(
        f"DELETE FROM asset_event_tags WHERE event_id IN (SELECT id FROM event_logs WHERE {where})"
    ).bindparams(sa.bindparam("keys", expanding=True))
    events = sa.text(f"DELETE FROM event_logs WHERE {where}").bindparams(sa.bindparam("keys", expanding=True))
    return {
        "partition_event_tags": conn.execute(tags, params).rowcount,
        "partition_events": conn.execute(events, params).rowcount,
    }


def runs_without_asset_events(conn: Connection, ended_before: dt.datetime, run_ids: list[str]) -> list[str]:
    """Of `run_ids` (finished runs), those with no asset event left in the event log: nothing of
    a partition's status depends on them any more."""
    if not run_ids:
        return []
    query = sa.text(
        "SELECT DISTINCT run_id FROM event_logs WHERE run_id IN :ids AND dagster_event_type IN "
        "('ASSET_MATERIALIZATION', 'ASSET_OBSERVATION', 'ASSET_CHECK_EVALUATION')"
    ).bindparams(sa.bindparam("ids", expanding=True))
    keep: set[str] = set()
    for start in range(0, len(run_ids), 500):
        keep.update(row[0] for row in conn.execute(query, {"ids": run_ids[start:start + 500]}))
    return [run_id for run_id in run_ids if run_id not in keep]


def event_log_size(conn: Connection) -> dict[str, int]:
    """Rows of `event_logs`, and on PostgreSQL its total relation size in bytes (indexes, TOAST)."""
    rows = int(conn.execute(sa.text("SELECT count(*) FROM event_logs")).scalar() or 0)
    size = {"event_log_rows": rows}
    if conn.dialect.name == "postgresql":
        size["event_log_bytes"] = int(conn.execute(sa.text("SELECT pg_total_relation_size('event_logs')")).scalar())
    return size
