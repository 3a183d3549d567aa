"""A server process's start-up heap is out of the garbage collector's reach; an app built by the tests is not.

A full collection scanned the 230,000 objects imported at start-up (Dagster, FastAPI, SQLAlchemy,
pandas), a pause of 60 to 150 ms of the worker's event loop: the tail of the cache hits
(docs/performance.md). In a subprocess, so that this test's own heap is left as it is.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc
from fastapi.testclient import TestClient
from symbol_pipeline.api.app import api_settings, app_from_environment, create_app
with TestClient(create_app(api_settings())):
    print(gc.get_freeze_count())
with TestClient(app_from_environment()):
    frozen = gc.get_freeze_count()
    gc.collect()
    print(frozen, len(gc.get_objects(generation=2)))
"""


def test_server_factory_freezes_the_start_up_heap(tmp_path):
    env = {"SYMBOL_PIPELINE_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    plain, served = out.stdout.split("\n")[:2]
    assert int(plain) == 0  # create_app alone (the tests' apps) freezes nothing
    frozen, left = (int(x) for x in served.split())
    # The factory froze what start-up built; what a full collection still scans is a small rest.
    assert frozen > 100_000
    assert left < frozen / 10
