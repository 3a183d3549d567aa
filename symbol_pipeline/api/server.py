"""The HTTP server the API runs in: uvicorn with a header timeout, which uvicorn lacks.

uvicorn closes a connection idle between requests (keep-alive timeout) but has no bound on how
long a client may take to send a request's headers: a client sending one byte every two seconds
holds its connection (and a file descriptor, and a slot of any connection limit) for as long as
it likes, and 200 such clients were never closed. `HeaderTimeoutProtocol` is uvicorn's httptools
protocol (the one it picks when httptools is installed) with one timer: armed when a connection
opens and when a new request's first byte arrives, cancelled when the request's headers are
complete. When it fires the connection gets a 408 and is closed. The body is not timed here
(a slow body holds a connection too, but only after the key check, which precedes reading it).

`serve` is what `symbol-pipeline serve` runs, in production as in the tests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Re-exported: the setting is read with the others (config.py), the timeout is enforced here.
from symbol_pipeline.config import DEFAULT_HEADER_TIMEOUT, HEADER_TIMEOUT_ENV
from symbol_pipeline.lib.rules import SettingError

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, closing connections whose headers take longer than `header_timeout`."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is bounded too

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # the next request of a kept-alive connection: its headers are timed afresh

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class with `seconds` as its header timeout (uvicorn instantiates the class)."""
    if not seconds > 0:
        raise SettingError(f"{HEADER_TIMEOUT_ENV} must be a positive number of seconds, got {seconds}")
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": float(seconds)})


def serve(app: Any, host: str, port: int, log_level: str, header_timeout: float) -> None:
    """Run `app` with uvicorn until it is stopped, connections bounded by the header timeout."""
    uvicorn.run(app, host=host, port=port, log_level=log_level, http=header_timeout_protocol(header_timeout))
