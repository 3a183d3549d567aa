"""Day two at the command line (issue 17, item 7): a date outside the window names the setting,
the README's example runs verbatim, `--symbols` names what it skipped, a fetch no retry can fix
fails at once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from symbol_pipeline.cli.main import main as cli
from symbol_pipeline_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _readme_example() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    lines = [line for line in readme.splitlines() if "real-prices" in line and "symbol-pipeline run" in line]
    assert len(lines) == 1, "the README's real-prices example"
    return lines[0].strip()


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMBOL_PIPELINE_", "DAGSTER_"))}
    env["SYMBOL_PIPELINE_DATA_DIR"] = str(tmp_path / "data")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_readme_example_runs_verbatim(tmp_path, real_prices_dir):
    example = _readme_example()
    done = subprocess.run(["bash", "-c", example], cwd=REPO_ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "symbol layer 2024-12-31: done" in done.stdout + done.stderr


def test_a_date_before_the_window_names_the_setting_and_the_value(tmp_path, real_prices_dir):
    without = re.sub(r"SYMBOL_PIPELINE_PARTITIONS_START=\S+ ", "", _readme_example())
    done = subprocess.run(["bash", "-c", without], cwd=REPO_ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "is before the first date partition" in done.stderr
    assert "SYMBOL_PIPELINE_PARTITIONS_START=2024-12-31" in done.stderr
    assert "symbol-pipeline window move --to 2024-12-31" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_symbols_names_each_symbol_it_skipped_with_why_and_the_fix(tmp_path, monkeypatch, capsys, real_prices_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("SYMBOL_PIPELINE_DATABASE_URL", raising=False)
    monkeypatch.setenv("SYMBOL_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SYMBOL_PIPELINE_PRICE_SOURCE", f"csv:{real_prices_dir}")
    monkeypatch.setenv("SYMBOL_PIPELINE_PARTITIONS_START", "2024-12-31")
    assert cli(["run", "--date", "2024-12-31", "--symbols", "KO,PEP,NOPE"]) in (0, 1, 2)
    out = "".join(capsys.readouterr())
    assert "skipped NOPE: error" in out and "symbol-pipeline symbols retry NOPE" in out
    assert "skipped KO" not in out and "skipped PEP" not in out
    # Once in `error`, a later run skips it again and says so, with the same recovery.
    assert cli(["run", "--date", "2024-12-31", "--symbols", "KO,NOPE"]) in (0, 1, 2)
    assert "skipped NOPE: error" in "".join(capsys.readouterr())


def test_a_fetch_no_retry_can_fix_fails_the_run_without_retrying(tmp_path, monkeypatch):
    """A source without any prices: the regressor ETFs are missing, which no retry fixes, so the
    step is not retried (on main: RetryPolicy(3, 10 s, exponential) made it 254 s)."""
    empty = tmp_path / "empty-source"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("SYMBOL_PIPELINE_DATABASE_URL", raising=False)
    monkeypatch.setenv("SYMBOL_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SYMBOL_PIPELINE_PRICE_SOURCE", f"csv:{empty}")
    monkeypatch.setenv("SYMBOL_PIPELINE_PARTITIONS_START", "2024-12-02")
    assert cli(["run", "--date", "2024-12-31", "--symbols", "AAA"]) == 1
    from symbol_pipeline.runs.instance import get_instance

    with get_instance(tmp_path / "data") as instance:
        retried = instance.get_records_for_run
        runs = instance.get_runs()
        assert runs
        for run in runs:
            types = {r.event_log_entry.dagster_event.event_type for r in retried(run.run_id).records
                     if r.event_log_entry.dagster_event}
            assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in types
