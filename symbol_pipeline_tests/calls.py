"""Counting the Python function calls a piece of code makes: how a test says "vectorised over
symbols" without a wall clock. A kernel whose calls do not grow with the number of symbols has
no Python loop over them, on any machine and under any load; timings live in benchmarks/."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def python_calls(fn: Callable[[], Any]) -> tuple[int, Any]:
    """(number of Python-level function calls `fn()` made in this thread, its result)."""
    count = 0

    def profile(_frame, event: str, _arg) -> None:
        nonlocal count
        if event == "call":
            count += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        result = fn()
    finally:
        sys.setprofile(previous)
    return count, result
