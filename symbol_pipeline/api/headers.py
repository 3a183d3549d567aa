"""Requests whose headers cannot be read one way: two `Authorization` headers are a 400.

Starlette's `request.headers.get` reads the first of repeated headers, and the body-limit
middleware's dict of headers the last, so a GET and a POST could authenticate different keys from
the same request. Refusing the request before anything reads a key leaves one reading.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

DUPLICATE_AUTHORIZATION_DETAIL = "more than one Authorization header: send exactly one"


class SingleAuthorizationMiddleware:
    """Pure ASGI: answers 400 to an HTTP request with more than one Authorization header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            count = sum(1 for name, _ in scope.get("headers", ()) if name.lower() == b"authorization")
            if count > 1:
                body = json.dumps({"detail": DUPLICATE_AUTHORIZATION_DETAIL}).encode()
                await send({"type": "http.response.start", "status": 400, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
        await self.app(scope, receive, send)
