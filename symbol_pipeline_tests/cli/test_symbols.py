"""The command line end to end: `run` through Dagster, then `betas`, as a user calls them."""

import csv
import io
import math
import os
import subprocess
import sys

import pytest

from symbol_pipeline.cli import main
from symbol_pipeline.cli.symbols import BETA_CSV_HEADER
from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline_tests.reference import read_real_closes, reference_exposures

TOL = 1e-8


def _cli(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "symbol_pipeline.cli", *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd, timeout=600,
    )


@pytest.mark.slow
def test_real_prices_through_the_pipeline_match_statsmodels_and_sklearn(real_prices_dir, pipeline_env, monkeypatch):
    """Prices the project has not seen, read through csv:DIR, give the reference betas to 1e-8."""
    env = {"SYMBOL_PIPELINE_PRICE_SOURCE": f"csv:{real_prices_dir}"}
    run = _cli("run", "--date", "2024-12-31", env=env)
    assert run.returncode == 0, run.stderr
    assert "done in" in run.stderr
    out = _cli("betas", "--date", "2024-12-31", "--format", "csv", env=env)
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert tuple(rows[0]) == BETA_CSV_HEADER
    body = rows[1:]
    assert body == sorted(body, key=lambda r: (r[0], FACTOR_NAMES.index(r[1])))
    closes = read_real_closes(real_prices_dir)
    expected = reference_exposures(closes, "2024-12-31")
    symbols = sorted(closes.columns)
    assert {r[0] for r in body} == set(symbols)
    assert len(body) == len(symbols) * len(FACTOR_NAMES)
    for symbol, factor, beta, r2, nobs, quality in body:
        ref_beta, _, _, ref_r2, _, ref_nobs = expected[symbol, factor]
        assert int(nobs) == ref_nobs
        assert quality in ("ok", "capped")
        assert abs(float(beta) - ref_beta) <= TOL, (symbol, factor, beta, ref_beta)
        assert abs(float(r2) - ref_r2) <= TOL
        assert float(beta) == float(repr(float(beta)))  # full precision, not rounded


def test_non_trading_day_is_a_clear_error(pipeline_env, capsys):
    assert main(["run", "--date", "2024-12-25"]) == 1
    assert "not an NYSE trading session" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["A|B", "TOOLONGSYMBOLNAMEXXXXXXXXX", "A,,B;"])
def test_bad_symbols_are_rejected_before_anything_runs(pipeline_env, capsys, bad):
    assert main(["run", "--symbols", bad]) == 1
    assert "symbol" in capsys.readouterr().err


def test_betas_before_any_run_says_so(pipeline_env, capsys):
    assert main(["betas", "--format", "csv"]) == 1
    err = capsys.readouterr()
    assert err.out == ""
    assert "no betas stored" in err.err


@pytest.mark.slow
def test_symbols_run_on_the_synthetic_market_and_table_output(pipeline_env, capsys):
    assert main(["run", "--date", "2024-06-28", "--symbols", "AAPL,NEE"]) == 0
    capsys.readouterr()
    assert main(["betas", "--date", "2024-06-28", "--symbols", "NEE", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:]
    assert [r[1] for r in rows] == list(FACTOR_NAMES)
    assert all(r[0] == "NEE" and r[5] == "ok" and not math.isnan(float(r[2])) for r in rows)
    assert main(["symbols", "status", "AAPL"]) == 0
    assert "active" in capsys.readouterr().out
    assert main(["betas", "--date", "2024-06-28", "--symbols", "AAPL"]) == 0
    assert "market_beta" in capsys.readouterr().out
