"""The four analytics GETs answered below FastAPI: a plain ASGI route for the requests that make up
nearly all of the load (issue 19).

A cached read is one database round trip; FastAPI's routing, dependencies, request and response
objects cost about as much CPU again. `FastReadsMiddleware` sits inside `BodyLimitMiddleware`
(which has authenticated the caller) and answers a GET of

    /api/v1/analytics/portfolio/{id}/factor-exposures   [?as_of=D]
    /api/v1/analytics/portfolio/{id}/risk               [?as_of=D]
    /api/v1/analytics/portfolio/{id}/stress-test        [?date=D]
    /api/v1/analytics/portfolio/{id}/factor-exposures/history   [?start=D] [&end=D]

with the same service call, arguments and bytes as the FastAPI route (`routes/analytics.py`,
`routes/risk.py`), hit or miss, `X-Cache` included. Everything else passes on to FastAPI, which
then answers as it always has: no caller, any other parameter (`scenario`, a repeated one), a
date the shared rule (`lib/rules`) refuses, `Accept: text/csv`, and every error the service
raises on purpose (FastAPI's route calls the service again and maps the error; an error costs a
second read, a success never does). An outage propagates to `OutageMiddleware` like any other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from symbol_pipeline.api.auth import CALLER_STATE, KEY_STATE
from symbol_pipeline.api.routes.analytics import ANALYTICS_PREFIX
from symbol_pipeline.lib import rules
from symbol_pipeline.services import portfolio as service

_PATH = re.compile(re.escape(ANALYTICS_PREFIX) + r"/([^/]+)/(factor-exposures|risk|stress-test|factor-exposures/history)")
# Per endpoint: the query parameters it takes (each a date) and how the service is called.
_PARAMS = {"factor-exposures": ("as_of",), "risk": ("as_of",), "stress-test": ("date",),
           "factor-exposures/history": ("start", "end")}


def _call(endpoint: str, engine: Any, settings: Any, pid: str, dates: dict, owner: int, key: str | None) -> Callable:
    if endpoint == "factor-exposures":
        return lambda: service.portfolio_factor_exposures_json(engine, pid, dates.get("as_of"), owner_id=owner,
                                                               key_hash=key)
    if endpoint == "risk":
        return lambda: service.portfolio_risk_json(engine, pid, dates.get("as_of"), owner_id=owner, key_hash=key)
    if endpoint == "stress-test":
        return lambda: service.stress_test_json(engine, pid, dates.get("date"), None, owner_id=owner,
                                                scenarios_file=settings.scenarios_file, key_hash=key)
    return lambda: service.exposure_history_json(engine, pid, dates.get("start"), dates.get("end"), owner_id=owner,
                                                 key_hash=key)


def _dates(endpoint: str, query: bytes) -> dict | None:
    """The request's dates as the routes' `AsOfDate` reads them, or None: leave it to FastAPI."""
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        return None
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names) or not set(names) <= set(_PARAMS[endpoint]):
        return None
    try:
        return {name: rules.date_in_range(rules.parse_date(value)) for name, value in pairs}
    except (rules.RuleError, ValueError):
        return None


class FastReadsMiddleware:
    """The analytics GETs without FastAPI (see the module's docstring); `app` is the rest of the stack."""

    def __init__(self, app: ASGIApp, *, engine: Any, settings: Any) -> None:
        self.app = app
        self.engine = engine
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = _PATH.fullmatch(scope.get("path", "")) if scope["type"] == "http" and scope["method"] == "GET" else None
        caller = scope.get("state", {}).get(CALLER_STATE) if found else None
        dates = _dates(found.group(2), scope.get("query_string", b"")) if caller is not None else None
        if dates is None or any(k == b"accept" and b"text/csv" in v for k, v in scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        call = _call(found.group(2), self.engine, self.settings, found.group(1), dates, caller.id,
                     scope["state"].get(KEY_STATE))
        try:
            body, hit = await run_in_threadpool(call)
        except service.ServiceError:
            await self.app(scope, receive, send)  # FastAPI's route raises it again and maps it
            return
        body = body.encode() if isinstance(body, str) else body
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-length", str(len(body)).encode()), (b"content-type", b"application/json"),
            (b"x-cache", b"hit" if hit else b"miss")]})
        await send({"type": "http.response.body", "body": body})
