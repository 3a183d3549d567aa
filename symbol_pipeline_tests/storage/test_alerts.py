"""Alert rows: recorded first, the webhook's outcome written beside them afterwards."""

from __future__ import annotations

import sqlalchemy as sa

from symbol_pipeline.storage.alerts import record_alert, set_webhook_status
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.schema import pipeline_alerts


def test_record_then_set_the_webhook_status(database_url: str) -> None:
    engine = get_engine(database_url)
    first = record_alert(engine, "run-1", "symbol_layer_job", "price source down")
    second = record_alert(engine, "run-2", "factor_returns_job", "boom", webhook_status="sent 200")
    set_webhook_status(engine, first, "error: HTTP 500")
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(pipeline_alerts))}
    assert rows[first].run_id == "run-1" and rows[first].job_name == "symbol_layer_job"
    assert rows[first].message == "price source down" and rows[first].webhook_status == "error: HTTP 500"
    assert rows[second].webhook_status == "sent 200"
    engine.dispose()
