"""Authentication, once per request: one function checks the bearer key, routes read its result.

`BodyLimitMiddleware` (api/limits.py) calls `authenticate` for every HTTP request, before a byte of
a body is read, and leaves the caller (or None) on the request's state; a request with a body and
no valid key is refused there with a 401. The route dependencies (`deps.Caller`, `deps.Admin`,
`analytics.Reader`) read that result through `caller`, and never look the key up again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine

from symbol_pipeline.services import portfolio as service

UNAUTHORISED_DETAIL = "missing or invalid API key (Authorization: Bearer <key>)"
# The key of request.state (scope["state"]) where the middleware leaves the caller.
CALLER_STATE = "caller"

Authenticator = Callable[[str], Awaitable["service.User | None"]]


def authenticator(engine: Engine, remember_seconds: float) -> Authenticator:
    """The application's key check: `Authorization` header → the user, or None."""

    async def authenticate(header: str) -> service.User | None:
        # Async so that a remembered key costs no trip through the threadpool; only a key not
        # seen in the last few seconds goes to the database (in a worker thread).
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None
        found = service.remembered_user(key)
        if found is None:
            found = await run_in_threadpool(service.authenticate, engine, key, remember_seconds)
        return found

    return authenticate


def unauthorised() -> HTTPException:
    return HTTPException(401, UNAUTHORISED_DETAIL, headers={"WWW-Authenticate": "Bearer"})


def caller(request: Request) -> service.User:
    """The caller the middleware authenticated; 401 when the request had no valid key."""
    found = getattr(request.state, CALLER_STATE, None)
    if found is None:
        raise unauthorised()
    return found
