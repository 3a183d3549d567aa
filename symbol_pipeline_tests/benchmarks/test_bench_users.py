"""benchmarks/bench_users.py at a tiny size on PostgreSQL: it seeds, serves, loads every endpoint of
the mix and prints its table. No timing is asserted; the exit status (goals met or not) depends on
the machine, so only its being a verdict (0 or 1) is."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from symbol_pipeline_tests.databases import PG_ADMIN_URL

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_users.py"


def test_bench_users_runs_tiny(new_pg_database):
    pytest.importorskip("aiohttp", reason="the generator's client: pip install -e '.[bench]'")
    database = new_pg_database("sp_bench_users").rsplit("/", 1)[1]  # recreated and dropped by the script
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--admin-url", PG_ADMIN_URL, "--database", database, "--users", "50",
         "--symbols", "60", "--history-sessions", "30", "--rate", "60", "--seconds", "3", "--warmup", "1",
         "--rows", "plain", "--priority", "0"],
        capture_output=True, text=True, timeout=600,
    )
    out = result.stdout
    assert result.returncode in (0, 1), result.stderr[-4000:]
    assert "seeded 50 users" in out
    rows = re.findall(r"^  (exposures|risk|stress|history|change)\s+(hit|miss|-)\s+(\d+)", out, re.MULTILINE)
    assert {endpoint for endpoint, _, _ in rows} == {"exposures", "risk", "stress", "history", "change"}, out
    assert {cache for endpoint, cache, _ in rows if endpoint in ("exposures", "risk", "history")} <= {"hit", "miss"}
    # Every request answered 2xx: the users' keys, portfolios and positions are the service's own rows.
    statuses = ast.literal_eval(re.search(r"statuses (\{.*?\});", out).group(1))
    assert set(statuses) == {"200"}, statuses
    assert "row: goals" in out
