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
# The keys of request.state (scope["state"]) where the middleware leaves the caller, and the hash
# of its key for a read that checks the key in its own query.
CALLER_STATE = "caller"
KEY_STATE = "key_hash"
# How long a key accepted from the database answers, without a lookup of its own, a request whose
# read checks the key again in its own round trip (`checks_key`): such a request refuses a revoked
# key at once whatever the memory says, so the memory only saves the lookup.
CHECKED_MEMORY_SECONDS = 3600.0

# (Authorization header, whether the request's read checks the key itself) -> (user or None, key hash)
Authenticator = Callable[[str, bool], Awaitable["tuple[service.User | None, str | None]"]]


def authenticator(engine: Engine, remember_seconds: float) -> Authenticator:
    """The application's key check: `Authorization` header → the user (or None) and the key's hash."""

    async def authenticate(header: str, checked_later: bool = False) -> tuple[service.User | None, str | None]:
        # Async so that a remembered key costs no trip through the threadpool; only a key not
        # accepted within the allowed seconds goes to the database (in a worker thread).
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None, None
        found = service.remembered_user(key, CHECKED_MEMORY_SECONDS if checked_later else remember_seconds)
        if found is None:
            found = await run_in_threadpool(service.authenticate, engine, key, remember_seconds)
        return found, service.key_hash(key) if found is not None else None

    return authenticate


def key_of(request: Request) -> str | None:
    """The hash of the caller's key, for a read that checks it in its own round trip."""
    return getattr(request.state, KEY_STATE, None)


def unauthorised() -> HTTPException:
    return HTTPException(401, UNAUTHORISED_DETAIL, headers={"WWW-Authenticate": "Bearer"})


def caller(request: Request) -> service.User:
    """The caller the middleware authenticated; 401 when the request had no valid key."""
    found = getattr(request.state, CALLER_STATE, None)
    if found is None:
        raise unauthorised()
    return found
