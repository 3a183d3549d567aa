"""Run requests: rows the CLI and the HTTP API write and `run_request_sensor` turns into runs.

At most one daily request per date is open (requested or running) at a time: a unique index on
`active_key` decides between concurrent writers, so two POSTs never make two runs of a date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from symbol_pipeline.storage.schema import pipeline_run_requests as t

KINDS = ("daily", "backfill", "onboard")
OPEN_STATUSES = ("requested", "running")
FINAL_STATUSES = ("succeeded", "failed")


class OpenRequestError(Exception):
    """A daily request for the same date is already open."""

    def __init__(self, request: RunRequestRow):
        super().__init__(f"request {request.id} for {request.first_date} is {request.status}")
        self.request = request


@dataclass(frozen=True)
class RunRequestRow:
    id: int
    kind: str
    first_date: dt.date
    last_date: dt.date
    symbols: list[str] | None
    requested_by: str
    status: str
    run_ids: list[str]
    message: str | None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


def _row(r) -> RunRequestRow:
    return RunRequestRow(
        id=int(r.id), kind=r.kind, first_date=r.first_date, last_date=r.last_date,
        symbols=r.symbols.split(",") if r.symbols else None, requested_by=r.requested_by,
        status=r.status, run_ids=[i for i in (r.run_ids or "").split(",") if i], message=r.message,
    )


def _active_key(kind: str, first_date: dt.date) -> str | None:
    return f"daily:{first_date.isoformat()}" if kind == "daily" else None


def open_daily_request(engine: Engine, date: dt.date) -> RunRequestRow | None:
    with engine.connect() as conn:
        r = conn.execute(sa.select(t).where(t.c.active_key == _active_key("daily", date))).first()
    return _row(r) if r else None


def create_request(
    engine: Engine, kind: str, first_date: dt.date, last_date: dt.date,
    symbols: Sequence[str] | None, requested_by: str,
) -> int:
    """Insert a request; its id. A daily request while one for that date is open: OpenRequestError."""
    if kind not in KINDS:
        raise ValueError(f"unknown request kind {kind!r}")
    try:
        with engine.begin() as conn:
            result = conn.execute(t.insert().values(
                kind=kind, first_date=first_date, last_date=last_date,
                symbols=",".join(symbols) if symbols else None, requested_by=requested_by[:64],
                status="requested", run_ids="", active_key=_active_key(kind, first_date),
            ))
            return int(result.inserted_primary_key[0])
    except sa.exc.IntegrityError:
        existing = open_daily_request(engine, first_date)
        if existing is None:  # it ended between the insert and this read
            return create_request(engine, kind, first_date, last_date, symbols, requested_by)
        raise OpenRequestError(existing) from None


def get_request(engine: Engine, request_id: int) -> RunRequestRow | None:
    with engine.connect() as conn:
        r = conn.execute(sa.select(t).where(t.c.id == request_id)).first()
    return _row(r) if r else None


def open_requests(engine: Engine) -> list[RunRequestRow]:
    """Requested or running, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).where(t.c.status.in_(OPEN_STATUSES)).order_by(t.c.id)).all()
    return [_row(r) for r in rows]


def update_request(
    engine: Engine, request_id: int, status: str, run_ids: Sequence[str], message: str | None = None
) -> None:
    """Record the request's runs and status; a final status closes it (frees its date)."""
    values = {"status": status, "run_ids": ",".join(run_ids), "message": message, "updated_at": sa.func.now()}
    if status in FINAL_STATUSES:
        values["active_key"] = None
    with engine.begin() as conn:
        conn.execute(t.update().where(t.c.id == request_id).values(**values))
