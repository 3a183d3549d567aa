"""Error bodies that never echo a long input: every HTTPException's detail is cut like a 422's.

A route's message may quote what the client sent (`symbol 'xxx…' is not in the universe`, a
portfolio id from the path); the request line alone can be 60,000 characters, and an answer that
repeats it in full costs the server the bytes and helps nobody. The service errors are cut by
their handlers in app.py with the same `short_message`.
"""

from __future__ import annotations

from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from symbol_pipeline.api.limits import short_message


async def short_http_exception_handler(request: Request, exc: HTTPException) -> Response:
    """FastAPI's handler, with a text detail cut to `short_message`'s length."""
    if isinstance(exc.detail, str):
        exc.detail = short_message(exc.detail)
    return await http_exception_handler(request, exc)
