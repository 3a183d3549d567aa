"""Bad CLI arguments: one line on stderr, exit 1, before any work, and fast (the dates are checked
before Dagster is imported); an unreachable database is one line too; the operators' symbol commands."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from symbol_pipeline.cli import main
from symbol_pipeline.storage import universe
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.onboarding import queue_rows

# The bound: under 5 s. Counted in CPU seconds of the child process, which a busy CI
# machine (2 cores shared with other tests) does not inflate the way it inflates wall time.
MAX_SECONDS = 5.0


def _cli(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-m", "symbol_pipeline.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.mark.parametrize("args, message", [
    (["run", "--date", "2099-01-05"], "after the latest completed session"),
    (["run", "--date", "9999-12-31"], "after the latest completed session"),
    (["run", "--date", "0001-01-01"], "before the first date partition"),
    (["run", "--date", "2020-01-02"], "before the first date partition"),
    (["run", "--date", "2024-12-25"], "not an NYSE trading session"),
    (["run", "--date", "2024-13-01"], "not a date in YYYY-MM-DD form"),
    (["run", "--symbols", ","], "names no symbol"),
    (["run", "--symbols", "A|B"], "may only hold letters"),
    (["backfill", "--start", "2024-06-03", "--end", "2099-01-01"], "--end 2099-01-01 is after"),
    (["backfill", "--start", "2024-06-01", "--end", "2024-06-28"], "--start 2024-06-01 is not an NYSE"),
    (["backfill", "--start", "2024-06-03", "--end", "2024-06-28", "--symbols", " , "], "names no symbol"),
])
def test_bad_run_arguments_are_one_line_and_exit_1_fast(pipeline_env, args, message):
    done, seconds = _cli(*args)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert seconds < MAX_SECONDS, f"{seconds:.1f} CPU seconds"
    assert not (pipeline_env / "symbol_pipeline.sqlite").exists()  # nothing opened, nothing written


def test_an_unreachable_database_is_one_line(pipeline_env):
    done, _ = _cli("symbols", "list", env={"SYMBOL_PIPELINE_DATABASE_URL": "postgresql://nobody:secret@127.0.0.1:1/x"})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: database postgresql+psycopg2://nobody:***@127.0.0.1:1/x")
    assert "secret" not in done.stderr


def test_a_bad_setting_is_one_line(pipeline_env, monkeypatch, capsys):
    monkeypatch.setenv("SYMBOL_PIPELINE_DELISTED_AFTER_SESSIONS", "zero")
    assert main(["symbols", "list"]) == 1
    assert capsys.readouterr().err.strip() == "error: SYMBOL_PIPELINE_DELISTED_AFTER_SESSIONS must be an integer, got 'zero'"


def test_operators_queue_retry_and_reject_symbols(pipeline_env, capsys):
    assert main(["symbols", "add", "NEWCO,SPAMCO"]) == 0
    engine = get_engine(f"sqlite:///{pipeline_env / 'symbol_pipeline.sqlite'}")
    with engine.begin() as conn:
        assert {r["priority"] for r in _queue(engine)} == {universe.OPERATOR_PRIORITY}
        universe.finish_onboarding(conn, "NEWCO", universe.STATUS_ERROR, "HTTP 503 from the source")
    capsys.readouterr()
    assert main(["symbols", "queue"]) == 0
    out = capsys.readouterr().out
    assert "NEWCO\terror" in out and "HTTP 503" in out and "SPAMCO\tpending" in out
    assert main(["symbols", "retry", "NEWCO,SPAMCO"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "NEWCO\tqueued again",
        "SPAMCO\tnot queued again (unknown, already queued, or not in a state that allows it: `symbols status SPAMCO`)",
    ]
    assert main(["symbols", "reject", "SPAMCO", "--reason", "not a stock"]) == 0
    assert main(["symbols", "status", "SPAMCO"]) == 0
    assert "error: rejected by an operator: not a stock" in capsys.readouterr().out
    assert main(["symbols", "retry", ","]) == 1
    assert "names no symbol" in capsys.readouterr().err


def _queue(engine):
    return queue_rows(engine)
