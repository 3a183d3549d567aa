"""Request bodies beyond a few kilobytes are parsed in a worker process, never on the event loop.

The event loop serves every client; a 1 MiB JSON array costs 30-80 ms of json.loads, during which
no other request moves (four clients posting such bodies took a cached GET from 6 ms to 1.5 s).
A thread does not help: the C parser holds the GIL for the whole document. So:

* bodies up to INLINE_BYTES (16 KiB, well above any single request the API takes, under a
  millisecond to parse) are parsed inline, as before;
* larger ones go to a process pool of PARSE_WORKERS processes (one: the pool is also the
  concurrency cap, the other core stays with the server), started with `spawn` (a fork of a
  threaded server with open database connections is unsafe) at a lower CPU priority;
* a worker sends back only what is small: a JSON document of at most MAX_JSON_VALUES values
  (unpickling a big one would cost the loop as much as parsing it), else the answer is a 413;
  an import's rows are parsed and bounded there too (`services.portfolio.parse_rows`).

`OffloadedRoute` is the route class of every router whose endpoints take a JSON body: its
requests' `json()` goes through the pool, so FastAPI's own validation and errors are unchanged.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

INLINE_BYTES = 16 * 1024
MAX_JSON_VALUES = 10_000
PARSE_WORKERS = 1
# Above the server's own priority: when both want the CPU, requests waiting on the loop go first.
WORKER_NICENESS = 5

_pool: ProcessPoolExecutor | None = None


def _exit_with(parent: int) -> None:
    # A worker holds both ends of its task queue, so it never sees its server die (kill -9):
    # it would wait for work forever. It leaves once it has been handed to another parent.
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _start_worker(parent: int) -> None:
    os.nice(WORKER_NICENESS)
    # Ctrl-C or a SIGINT to the server's process group is the server's to handle; the worker
    # leaves when the server shuts the pool down, or dies (below).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="parent-watch").start()


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(PARSE_WORKERS, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=_start_worker, initargs=(os.getpid(),))
    return _pool


def _ready() -> bool:
    return True


async def warm_up() -> None:
    """Start the worker now (a spawn imports the package: about two seconds), not on the first big body."""
    await asyncio.get_running_loop().run_in_executor(_executor(), _ready)


async def offload(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` in the parsing worker; its exceptions are raised here. A worker that died
    (killed, out of memory) breaks its pool for good: the pool is replaced for the next request,
    and this one is a 503."""
    global _pool
    pool = _executor()
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
    except BrokenProcessPool:
        if _pool is pool:
            _pool = None
            pool.shutdown(wait=False)
        raise HTTPException(503, "the request body parser restarted: try again",
                            headers={"Retry-After": "1"}) from None


def holds_more_values(doc: Any, limit: int) -> bool:
    """Whether `doc` holds more than `limit` JSON values (stops counting once past it)."""
    count, stack = 0, [doc]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_document(body: bytes, max_values: int) -> tuple[str, Any]:
    """In the worker: ("ok", document), ("invalid", (message, position)), ("too_many", limit) or
    ("error", message) for what json.loads itself cannot take (nesting past the recursion limit)."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        return "invalid", (exc.msg, exc.pos)
    except (ValueError, RecursionError) as exc:
        return "error", type(exc).__name__
    if holds_more_values(doc, max_values):
        return "too_many", max_values
    return "ok", doc


class OffloadedRequest(Request):
    """A request whose JSON body, when large, is parsed by the worker process."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if len(body) <= INLINE_BYTES:
                self._json = json.loads(body)
                return self._json
            outcome, value = await offload(parse_document, body, MAX_JSON_VALUES)
            if outcome == "invalid":  # FastAPI answers it as it answers an inline parse error
                raise json.JSONDecodeError(value[0], "", value[1])
            if outcome == "too_many":
                raise HTTPException(413, f"request body holds more than {value} JSON values")
            if outcome == "error":
                raise ValueError(f"JSON body not parsed: {value}")
            self._json = value
        return self._json


class OffloadedRoute(APIRoute):
    """The route class of routers with JSON bodies: their requests are `OffloadedRequest`s."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def offloaded(request: Request) -> Response:
            return await handler(OffloadedRequest(request.scope, request.receive))

        return offloaded
