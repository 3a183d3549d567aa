"""Pipeline alerts: a row in `pipeline_alerts` for every failed run, with the webhook's outcome."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from symbol_pipeline.storage.schema import pipeline_alerts


def record_alert(
    engine: Engine, run_id: str, job_name: str, message: str, webhook_status: str | None = None
) -> int:
    """Insert an alert row; its id."""
    with engine.begin() as conn:
        result = conn.execute(
            pipeline_alerts.insert().values(
                run_id=run_id, job_name=job_name, message=message, webhook_status=webhook_status
            )
        )
        return int(result.inserted_primary_key[0])


def set_webhook_status(engine: Engine, alert_id: int, webhook_status: str | None) -> None:
    """Record how posting alert `alert_id` went ("sent 204", "error: ...")."""
    with engine.begin() as conn:
        conn.execute(
            pipeline_alerts.update().where(pipeline_alerts.c.id == alert_id).values(webhook_status=webhook_status)
        )
