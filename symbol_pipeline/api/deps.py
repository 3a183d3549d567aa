"""What every route needs from the application: the caller, the engine and the settings.

The application (`app.py`) puts the engine, the settings and the key check on `app.state`; the
dependencies here read them from the request, so that route modules need no closure over them.

The caller is the one `BodyLimitMiddleware` authenticated (api/auth.py) before any body was read;
FastAPI's `HTTPBearer` (with `auto_error=False`) stays a parameter so that the OpenAPI schema
declares the bearer scheme and `/docs` has an Authorize button. A missing or invalid key is our
own 401 with `WWW-Authenticate: Bearer`. Every request of a user runs inside the onboarding cap
(`capped_requests`): new symbols beyond it are a 429 and nothing is written.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from symbol_pipeline.api.auth import caller
from symbol_pipeline.api.settings import ApiSettings
from symbol_pipeline.lib.symbols import InvalidSymbolError, validate_symbol
from symbol_pipeline.services import portfolio as service
from symbol_pipeline.services.onboarding import OnboardingLimitError, capped_requests

bearer = HTTPBearer(auto_error=False, description="An API key: `symbol-pipeline users issue-key NAME`")


async def _user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> AsyncIterator[service.User]:
    # `credentials` declares the bearer scheme in the OpenAPI schema; the key itself was checked
    # by the middleware (api/auth.py), whose result `caller` reads.
    found = caller(request)
    try:
        with capped_requests(_settings(request).onboarding_daily_cap):
            yield found
    except OnboardingLimitError as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": "86400"}) from None


def _admin(caller: Annotated[service.User, Depends(_user)]) -> service.User:
    if not caller.is_admin:
        raise HTTPException(403, "admin API key required")
    return caller


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings


Caller = Annotated[service.User, Depends(_user)]
Admin = Annotated[service.User, Depends(_admin)]
Db = Annotated[Engine, Depends(_engine)]
# The ApiSettings the application was created with (api/settings.py; app.py puts them on app.state).
Settings = Annotated[ApiSettings, Depends(_settings)]


def checked_symbol(symbol: str) -> str:
    """A path's symbol, validated like every other symbol (422 otherwise)."""
    try:
        return validate_symbol(symbol)
    except InvalidSymbolError as exc:
        raise HTTPException(422, str(exc)) from None


def requester(caller: service.User) -> str:
    """Who asked, as the onboarding queue records it (`requested_by`, 64 characters): `api:<name>`,
    cut for a name of 61 to 64 characters stored before the rules allowed 60 (else a 500)."""
    return f"api:{caller.name}"[:64]
