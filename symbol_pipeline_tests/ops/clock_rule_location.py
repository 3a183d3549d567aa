"""Main's old rule, as a code location for the process tests: the first date from this process's
clock (the last N completed sessions as of now), pinned before the project's definitions load.

test_window_processes.py serves it with `dagster code-server start` under faketime to reproduce the
failure that the stored window removes; it is not part of the package.
"""

from __future__ import annotations

import os

from symbol_pipeline.lib import sessions

_SESSIONS = int(os.environ["SYMBOL_PIPELINE_PARTITION_SESSIONS"])
os.environ["SYMBOL_PIPELINE_PARTITIONS_START"] = sessions.window_start(
    sessions.latest_completed_session(), _SESSIONS).isoformat()

from symbol_pipeline.definitions import defs  # noqa: E402  (built with the start pinned above)

__all__ = ["defs"]
