"""Loaded by the processes that test_window_processes.py starts under libfaketime (this directory
is first on their PYTHONPATH), never by the package.

libfaketime 0.9.10 (Debian 12) fakes the real-time clock and, with FAKETIME_DONT_FAKE_MONOTONIC,
leaves the monotonic one alone, which is what the processes need: the project reads the date, and
gRPC and threading time their waits on the monotonic clock. But it rewrites the absolute deadline
of `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`, which CPython's `time.sleep` uses, as if it
were a real-time one, and the call fails with EINVAL. A relative wait on an Event (a monotonic
condition wait, which libfaketime passes through) replaces it in these processes only.
"""

import os
import threading
import time

if "faketime" in os.environ.get("LD_PRELOAD", ""):
    def _sleep(seconds: float) -> None:
        if seconds > 0:
            threading.Event().wait(seconds)

    time.sleep = _sleep
