"""The console of `run`: at most 30 lines, failures grouped by reason, exit codes 0 / 2 / 1."""

import io
import os
import shutil
import subprocess
import sys

from symbol_pipeline.cli.console import RunConsole
from symbol_pipeline.lib.factors import REGRESSOR_ETFS
from symbol_pipeline.runs.follow import Progress, Summary

MAX_LINES = 30


def _cli(tmp_path, *args, **env):
    env = {**os.environ, "SYMBOL_PIPELINE_DATA_DIR": str(tmp_path / "data"), "SYMBOL_PIPELINE_SYNTHETIC_SYMBOLS": "20",
           "SYMBOL_PIPELINE_PRICE_SOURCE": "synthetic", **env}
    for name in ("DAGSTER_HOME", "SYMBOL_PIPELINE_DATABASE_URL"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "symbol_pipeline.cli", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)


def test_the_default_run_prints_at_most_30_lines(tmp_path):
    done = _cli(tmp_path, "run", "--date", "2024-06-28")
    lines = (done.stdout + done.stderr).splitlines()
    assert done.returncode == 0, done.stderr
    assert len(lines) <= MAX_LINES, "\n".join(lines)
    assert not any("DEBUG" in line or "dagster - " in line for line in lines), "\n".join(lines)
    assert any("28 symbols, 28 computed, 12 factors" in line for line in lines), "\n".join(lines)
    assert any("symbol-pipeline betas" in line for line in lines)


def test_a_symbol_without_prices_exits_2_and_is_named(tmp_path, real_prices_dir):
    prices = tmp_path / "prices"
    prices.mkdir()
    for name in [*REGRESSOR_ETFS, "AAPL", "MSFT"]:
        shutil.copy(real_prices_dir / f"{name}.csv", prices / f"{name}.csv")
    done = _cli(tmp_path, "run", "--date", "2024-12-31", "--symbols", "AAPL,MSFT,NOPEA,NOPEB",
                SYMBOL_PIPELINE_PRICE_SOURCE=f"csv:{prices}")
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "failed symbols (2)" in out and "no data file <symbol>.csv: NOPEA, NOPEB" in out, out
    assert len(out.splitlines()) <= MAX_LINES


def test_the_summary_groups_failures_by_reason_with_a_few_examples():
    stream = io.StringIO()
    failures = {"no data file <path>": [f"S{i}" for i in range(8)], "<symbol> is delisted": ["OLD"]}
    summary = Summary(run_ids=["r1", "r2"], failed_runs=[], errors=[], symbols=20, computed=11,
                      factors=["market_beta"], insufficient=1, capped=2, failures=failures, seconds=3.0)
    assert RunConsole(stream=stream).summary(summary, "symbol layer 2024-06-28", ["`dagster dev`"]) == 2
    text = stream.getvalue()
    assert "failed symbols (9)" in text
    assert "no data file <path>: S0, S1, S2, S3, S4 and 3 more" in text
    assert "<symbol> is delisted: OLD" in text
    assert "run(s): r1, r2" in text and "next: `dagster dev`" in text


def test_plain_progress_is_a_line_every_few_seconds():
    stream = io.StringIO()
    console = RunConsole(stream=stream, interval=3600)
    for done in range(50):
        console.update(Progress(materialized=done, total=100, stage="market_beta"))
    assert len(stream.getvalue().splitlines()) == 1
