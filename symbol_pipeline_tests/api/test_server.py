"""The server `symbol-pipeline serve` runs: connections that are slow to send their headers are
closed (issue 18 item 4; uvicorn alone never closed 200 connections sending a byte every 2 s).

Behavioural: the server closes each slow connection (end of file, or a reset on the next byte);
the only clock is a generous bound on how long the test waits for that, 10 times the timeout.
"""

from __future__ import annotations

import select
import socket
import time

import httpx
import pytest

from symbol_pipeline.api.server import HEADER_TIMEOUT_ENV, header_timeout_protocol
from symbol_pipeline_tests.serve_process import SERVED_ENV

pytestmark = [pytest.mark.slow]

TIMEOUT = float(SERVED_ENV[HEADER_TIMEOUT_ENV])  # the session's server (conftest) is started with it
SLOW_CLIENTS = 20


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.setblocking(False)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed `sock` (what it sent before, a 408, is read and dropped)."""
    try:
        while True:
            if not sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def test_connections_slow_to_send_their_headers_are_closed(sqlite_api_server):
    base = sqlite_api_server.base
    request = b"GET /api/v1/portfolios HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    slow = [_connect(base) for _ in range(SLOW_CLIENTS)]
    idle = _connect(base)  # sends nothing at all
    kept = _connect(base)  # a complete request first, then the next one byte by byte
    kept.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
    sent = dict.fromkeys([*slow, kept], 0)  # bytes of `request` each has sent
    open_ = {*slow, idle, kept}
    deadline = time.monotonic() + 10 * TIMEOUT + 10
    served_meanwhile = 0
    while open_ and time.monotonic() < deadline:
        readable, _, _ = select.select(list(open_), [], [], 0.25)
        for sock in readable:  # kept's first response makes it readable too, before it is closed
            if _closed_by_server(sock):
                open_.discard(sock)
        for sock in [s for s in sent if s in open_]:
            try:
                sock.send(request[sent[sock] % (len(request) - 1):][:1])  # a byte a round, never the end
                sent[sock] += 1
            except OSError:
                open_.discard(sock)
        # Meanwhile the server serves everyone else at once.
        served_meanwhile += httpx.get(f"{base}/openapi.json", timeout=10).status_code == 200
    for sock in [*slow, idle, kept]:
        sock.close()
    assert not open_, f"{len(open_)} of {SLOW_CLIENTS + 2} slow connections still open"
    assert served_meanwhile > 0


def test_the_timeout_must_be_positive():
    assert header_timeout_protocol(2.5).header_timeout == 2.5
    with pytest.raises(ValueError, match=HEADER_TIMEOUT_ENV):
        header_timeout_protocol(0)
