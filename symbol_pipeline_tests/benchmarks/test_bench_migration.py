"""benchmarks/bench_migration.py at a tiny size: it fills a database at revision 0008, upgrades it
with its probes running and prints what the readers and writers saw. No timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from symbol_pipeline_tests.databases import PG_ADMIN_URL

pytestmark = pytest.mark.postgres

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_migration.py"


def test_bench_migration_runs_tiny(new_pg_database):
    database = new_pg_database("sp_bench_migration").rsplit("/", 1)[1]  # recreated and dropped by the script
    result = subprocess.run([sys.executable, str(SCRIPT), "--admin-url", PG_ADMIN_URL, "--database", database,
                             "--symbols", "30", "--sessions", "5"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "filled: 1,800 beta rows" in result.stdout
    assert re.search(r"migration 0009: [\d.]+ s in one transaction; 150 rows of symbol_session_betas", result.stdout)
    assert re.search(r"reader of symbol_factor_exposures during it: \d+ answered, 0 blocked", result.stdout)
