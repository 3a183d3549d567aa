"""A database outage is a 503 that says so, not a 500: the client may retry, the server recovers
by itself (the pool checks each connection before use and reconnects).

`OutageMiddleware` is pure ASGI and outermost among the application's middleware, so it also
covers the key check that `BodyLimitMiddleware` does before any route runs. An exception the
services classify as an outage (`services.serving.outage`) becomes a 503 with `Retry-After`
(1 s when the database is busy, 5 s when it is unreachable) and a body naming the kind of
outage; the driver's first line goes to the log, without the statement or its parameters.
Any other exception passes on, to be the 500 it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from symbol_pipeline.services.serving import Outage

BUSY_RETRY_SECONDS = 1
DOWN_RETRY_SECONDS = 5

logger = logging.getLogger("symbol_pipeline.api")


def _find(exc: BaseException, classify: Callable[[BaseException], Outage | None]) -> Outage | None:
    """The outage behind `exc`: itself, its causes, or (an exception group) one of its members."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        # An exception group (the builtin from 3.11, the backport before) holds its members here.
        members = getattr(current, "exceptions", None)
        if isinstance(members, (list, tuple)):
            for member in members:
                found = _find(member, classify)
                if found is not None:
                    return found
        found = classify(current)
        if found is not None:
            return found
        current, seen = current.__cause__ or current.__context__, seen + 1
    return None


def outage_detail(found: Outage) -> tuple[str, int]:
    """The body's message and the seconds of `Retry-After` for an outage."""
    seconds = BUSY_RETRY_SECONDS if found.busy else DOWN_RETRY_SECONDS
    return f"{found.reason}: try again in {seconds} s", seconds


class OutageMiddleware:
    """Turn an outage raised anywhere below into a 503 with `Retry-After`, unless a response has started."""

    def __init__(self, app: ASGIApp, *, classify: Callable[[BaseException], Outage | None]) -> None:
        self.app = app
        self.classify = classify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            found = _find(exc, self.classify)
            if found is None or started:
                raise
            detail, seconds = outage_detail(found)
            logger.warning("%s %s: %s (%s)", scope.get("method"), scope.get("path"), found.reason,
                           found.driver_message)
            await JSONResponse({"detail": detail}, status_code=503,
                               headers={"Retry-After": str(seconds)})(scope, receive, send)
