"""Pipeline alerts: a row in `pipeline_alerts` for every failed run, and an optional webhook."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from symbol_pipeline.storage.schema import pipeline_alerts

WEBHOOK_TIMEOUT_SECONDS = 5.0


def post_webhook(url: str, payload: dict[str, Any], timeout: float = WEBHOOK_TIMEOUT_SECONDS) -> str:
    """POST `payload` as JSON; return "sent <status>" or "error: <reason>". Never raises.

    An alert that cannot be delivered must not turn into a second failure: the row in
    pipeline_alerts stays the record, with the delivery outcome beside it.
    """
    body = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "symbol-pipeline"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - operator-set URL
            return f"sent {response.status}"
    except urllib.error.HTTPError as exc:
        return f"error: HTTP {exc.code}"
    except Exception as exc:  # noqa: BLE001 - a webhook outage, a bad URL, a timeout: all just recorded
        return f"error: {type(exc).__name__}: {exc}"[:32]


def record_alert(
    engine: Engine, run_id: str, job_name: str, message: str, webhook_status: str | None = None
) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            pipeline_alerts.insert().values(
                run_id=run_id, job_name=job_name, message=message, webhook_status=webhook_status
            )
        )
        return int(result.inserted_primary_key[0])


def alert_run_failure(
    engine: Engine, run_id: str, job_name: str, message: str, webhook_url: str | None, extra: dict | None = None
) -> tuple[int, str | None]:
    """Record the alert, then post it when a webhook is configured; (alert id, webhook status)."""
    status = None
    if webhook_url:
        payload = {"event": "run_failure", "run_id": run_id, "job_name": job_name, "message": message, **(extra or {})}
        status = post_webhook(webhook_url, payload)
    return record_alert(engine, run_id, job_name, message, status), status


def recent_alerts(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(pipeline_alerts).order_by(pipeline_alerts.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]
