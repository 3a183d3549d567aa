"""A real server for an app, and the header a client sends (the databases: databases.py)."""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn


def auth_header(key: str) -> dict[str, str]:
    """The header an API client sends with its key."""
    return {"Authorization": f"Bearer {key}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(app) -> Iterator[int]:
    """Serve `app` with uvicorn in a thread; yield its port; stop it and give back its connections."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(5)
        app.state.engine.dispose()  # the PostgreSQL server is shared: give its connections back
