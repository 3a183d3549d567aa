"""What every route needs from the application: the caller, the engine and the settings.

The application (`app.py`) puts the engine, the settings and the key check on `app.state`; the
dependencies here read them from the request, so that route modules need no closure over them.
"""

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy.engine import Engine

from symbol_pipeline.api.limits import UNAUTHORISED_DETAIL, USER_SCOPE_KEY
from symbol_pipeline.lib.symbols import InvalidSymbolError, validate_symbol
from symbol_pipeline.services import portfolio as service


async def _user(request: Request) -> service.User:
    # A request with a body was authenticated by BodyLimitMiddleware already.
    found = request.scope.get(USER_SCOPE_KEY)
    if found is None:
        found = await request.app.state.caller_for(request.headers.get("authorization", ""))
    if found is None:
        raise HTTPException(401, UNAUTHORISED_DETAIL, headers={"WWW-Authenticate": "Bearer"})
    return found


def _admin(caller: Annotated[service.User, Depends(_user)]) -> service.User:
    if not caller.is_admin:
        raise HTTPException(403, "admin API key required")
    return caller


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def _settings(request: Request) -> Any:
    return request.app.state.settings


Caller = Annotated[service.User, Depends(_user)]
Admin = Annotated[service.User, Depends(_admin)]
Db = Annotated[Engine, Depends(_engine)]
# The ApiSettings of the application (typed Any: app.py imports the routes, not the reverse).
Settings = Annotated[Any, Depends(_settings)]


def checked_symbol(symbol: str) -> str:
    """A path's symbol, validated like every other symbol (422 otherwise)."""
    try:
        return validate_symbol(symbol)
    except InvalidSymbolError as exc:
        raise HTTPException(422, str(exc)) from None
