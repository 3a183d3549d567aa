"""Request bodies at the edge: authentication before a body is read, a size limit, and 422s that
do not echo their input back.

`BodyLimitMiddleware` is pure ASGI (a BaseHTTPMiddleware would read the body through its own
stream): it authenticates the bearer key of every request (api/auth.py) and leaves the caller on
the request's state for the routes; a request with a body and no valid key is a 401 without a byte
of the body read. It then answers 413 when Content-Length exceeds the limit, and counts the bytes
it passes on so that a chunked body beyond the limit is cut off with a 413 too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from symbol_pipeline.api.auth import CALLER_STATE, KEY_STATE, UNAUTHORISED_DETAIL, Authenticator
from symbol_pipeline.api.parsing import holds_more_values

# Re-exported: the setting is read with the others (config.py), the limit is enforced here.
from symbol_pipeline.config import DEFAULT_MAX_BODY_BYTES, MAX_BODY_ENV  # noqa: F401

# A 422 names at most this many errors, each input shortened to this many characters of JSON.
MAX_ERRORS = 50
MAX_INPUT_CHARS = 200


class _BodyTooLarge(Exception):
    pass


def _json(status: int, document: dict[str, Any], headers: Mapping[str, str] | None = None) -> tuple[Message, Message]:
    body = json.dumps(document).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return ({"type": "http.response.start", "status": status, "headers": raw_headers},
            {"type": "http.response.body", "body": body, "more_body": False})


def too_large_detail(limit: int) -> str:
    return f"request body larger than {limit} bytes"


class BodyLimitMiddleware:
    """Authenticate every HTTP request, then bound the body of every one that has one.

    `authenticate(authorization_header)` returns the caller or None, left on the request's state
    (`api.auth.caller` reads it); `limit_for(path)` the body limit in bytes for that path (an
    import endpoint may allow more than the default).
    """

    def __init__(self, app: ASGIApp, *, authenticate: Authenticator, limit_for: Callable[[str], int],
                 checks_key: Callable[[str, str], bool] = lambda method, path: False) -> None:
        self.app = app
        self.authenticate = authenticate
        self.limit_for = limit_for
        self.checks_key = checks_key  # (method, path): whether that route's read checks the key itself

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        caller, key_hash = await self.authenticate(headers.get(b"authorization", b"").decode("latin-1"),
                                                   self.checks_key(scope.get("method", ""), scope.get("path", "")))
        state = scope.setdefault("state", {})
        state[CALLER_STATE], state[KEY_STATE] = caller, key_hash
        length_header = headers.get(b"content-length")
        chunked = b"transfer-encoding" in headers
        if length_header is None and not chunked:  # no body: the route decides whether it needs a caller
            await self.app(scope, receive, send)
            return
        if caller is None:
            await self._reply(send, 401, UNAUTHORISED_DETAIL, {"WWW-Authenticate": "Bearer"})
            return

        limit = self.limit_for(scope.get("path", ""))
        if length_header is not None:
            try:
                declared = int(length_header)
            except ValueError:
                await self._reply(send, 400, "invalid Content-Length")
                return
            if declared > limit:
                await self._reply(send, 413, too_large_detail(limit))
                return

        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app makes of the cut-off body, the answer is 413
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._reply(send, 413, too_large_detail(limit))

    @staticmethod
    async def _reply(send: Send, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        start, body = _json(status, {"detail": detail}, headers)
        await send(start)
        await send(body)


def _short(value: Any) -> Any:
    """`value`, or None when its JSON is longer than MAX_INPUT_CHARS (a long string is cut instead)
    or is no JSON at all: NaN, ±Infinity and unpaired surrogates are what a 422 may have to name,
    and echoing them would make the answer itself unencodable (a 500)."""
    if isinstance(value, str):
        value = value if len(value) <= MAX_INPUT_CHARS else value[:MAX_INPUT_CHARS] + "…"
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    # More values than half the characters cannot fit (each takes a character and a separator):
    # dropped before encoding, which took seconds for a body of 500,000 values, on the event loop.
    if holds_more_values(value, MAX_INPUT_CHARS // 2):
        return None
    try:
        text = json.dumps(jsonable_encoder(value), allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
        return None
    return value if len(text) <= MAX_INPUT_CHARS else None


def short_message(text: str, limit: int = 2 * MAX_INPUT_CHARS) -> str:
    """`text` cut to `limit` characters: an error message that quotes its input stays small."""
    return text if len(text) <= limit else text[:limit] + "…"


def short_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first MAX_ERRORS errors with each `input` shortened or dropped, `ctx` kept only when small."""
    out = []
    for error in errors[:MAX_ERRORS]:
        error = dict(error)
        if "input" in error:
            short = _short(error["input"])
            if short is None:
                del error["input"]
            else:
                error["input"] = short
        if "ctx" in error and _short(error["ctx"]) is None:
            del error["ctx"]
        if "msg" in error:
            error["msg"] = _short(str(error["msg"]))
        if "loc" in error:  # an unknown JSON key is part of the location, and may be 60,000 characters
            error["loc"] = [_short(part) if isinstance(part, str) else part for part in error["loc"]]
        out.append(error)
    return out


async def validation_error_handler(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with the errors but not the (possibly huge) input that caused them."""
    errors = list(exc.errors())
    document: dict[str, Any] = {"detail": jsonable_encoder(short_validation_errors(errors))}
    if len(errors) > MAX_ERRORS:
        document["errors_not_shown"] = len(errors) - MAX_ERRORS
    return JSONResponse(document, status_code=422)
