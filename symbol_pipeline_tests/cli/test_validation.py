"""Bad CLI arguments: one line on stderr, exit 1, before any work and before Dagster is imported
(seconds of imports a mistyped date should not wait for); an unreachable database is one line too;
the operators' symbol commands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from symbol_pipeline.cli import main
from symbol_pipeline.storage import universe
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.onboarding import queue_rows

# The CLI in a child process, which then names the heavy modules it imported on its last stdout
# line: what the old bound of 5 s stood for is that a bad argument is refused before Dagster and
# the definitions are imported (about 1.5–3 s of CPU to import, docs/performance.md).
_CHILD = """
import sys
from symbol_pipeline.cli.main import main
code = main(sys.argv[1:])
print(",".join(m for m in ("dagster", "symbol_pipeline.definitions") if m in sys.modules))
sys.exit(code)
"""


def _cli(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, list[str]]:
    """The finished child, and the heavy modules it had imported when the command returned."""
    done = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)
    last = done.stdout.strip().splitlines()[-1:] or [""]
    return done, [m for m in last[0].split(",") if m]


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
def test_bad_run_arguments_are_one_line_and_exit_1_before_dagster_is_imported(pipeline_env, args, message):
    done, imported = _cli(*args)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert imported == [], f"imported before refusing the argument: {imported}"
    assert not (pipeline_env / "symbol_pipeline.sqlite").exists()  # nothing opened, nothing written


def test_an_unreachable_database_is_one_line(pipeline_env):
    done, imported = _cli("symbols", "list", env={"SYMBOL_PIPELINE_DATABASE_URL": "postgresql://nobody:secret@127.0.0.1:1/x"})
    assert done.returncode == 1
    assert "dagster" in imported  # past the argument checks the commands import Dagster: the probe sees it
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


def test_an_unexpected_error_is_named_as_one_and_its_traceback_shown_with_verbose(pipeline_env, monkeypatch, capsys):
    """A ValueError from a bug is not a user's error: one line that says so, its traceback with --verbose;
    a user's error (a bad setting, a rule broken) stays one line either way."""
    from symbol_pipeline.cli import window_cmd

    def broken(args):
        raise ValueError("a bug deep inside")

    monkeypatch.setattr(window_cmd, "cmd_show", broken)
    assert main(["window", "show"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: unexpected ValueError: a bug deep inside (`--verbose` shows the traceback)"
    assert main(["--verbose", "window", "show"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last)") and "in broken" in err
    assert err.strip().endswith("ValueError: a bug deep inside")
    monkeypatch.setenv("SYMBOL_PIPELINE_DELISTED_AFTER_SESSIONS", "zero")
    assert main(["--verbose", "window", "show"]) == 1
    assert capsys.readouterr().err.strip() == "error: SYMBOL_PIPELINE_DELISTED_AFTER_SESSIONS must be an integer, got 'zero'"


def test_onboard_says_everything_on_one_channel(pipeline_env, capsys):
    """An empty queue is one line on stderr (the console's), whichever way the queue is served."""
    assert main(["onboard"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == "the onboarding queue is empty" and captured.out == ""
