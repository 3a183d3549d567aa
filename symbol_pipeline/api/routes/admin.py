"""Operator endpoints: the daily symbol batch. Every route needs an admin key."""

import datetime as dt
from typing import Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict

from symbol_pipeline.api import models
from symbol_pipeline.api.deps import Admin, Db, Settings
from symbol_pipeline.api.parsing import OffloadedRoute
from symbol_pipeline.runs.requests import (
    InvalidRunDateError,
    check_run_date,
    daily_batch_status,
    request_daily_symbol_batch,
)
from symbol_pipeline.services import window

router = APIRouter(prefix="/api/v1/admin/symbol-batch", tags=["admin"], route_class=OffloadedRoute)


class SymbolBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: dt.date | None = None


@router.post("/run", status_code=202, response_model=models.BatchRequested)
def run_symbol_batch(caller: Admin, engine: Db, settings: Settings, body: SymbolBatchIn | None = None) -> Any:
    """Ask the Dagster daemon for the daily symbol run (a request its sensor starts): 202 with the
    request id; 409 while a daily run of that date is requested, queued or running; 503 without a
    daemon. `date` (default: the latest completed session) must be an NYSE session inside the date
    partitions and not after the latest completed session (422 otherwise, nothing requested)."""
    day = body.date if body else None
    if day is not None:
        try:
            rule = settings.window_rule
            check_run_date(day, window.peek_first_date(engine, rule), "date", window.include_hint(day, rule))
        except InvalidRunDateError as exc:
            raise RequestValidationError([{"loc": ("body", "date"), "msg": str(exc), "type": "value_error"}]) from None
    # No daemon, or a daily run of that date already open, are errors that api/errors.py answers.
    requested = request_daily_symbol_batch(engine, settings.data_dir, day, f"api:{caller.name}")
    return {"status": "requested", "date": requested.date.isoformat(), "request_id": requested.request_id,
            "run_id": None}


@router.get("/status", response_model=models.BatchStatus, response_model_exclude_unset=True)
def get_symbol_batch_status(_: Admin, settings: Settings) -> Any:
    """The latest daily symbol run (not onboarding nor backfill runs) with its counts."""
    return daily_batch_status(settings.data_dir)
