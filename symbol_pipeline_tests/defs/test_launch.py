"""defs.launch: the helpers the CLI and the HTTP API use to start and follow symbol-layer runs."""

import subprocess
import sys

import dagster as dg
import pytest

from symbol_pipeline.defs import launch
from symbol_pipeline.lib.sessions import NotATradingDayError


def test_contiguous_blocks_follow_the_dynamic_order():
    order = ["A", "B", "C", "D", "E", "F"]
    assert launch.contiguous_blocks(["B", "C", "E"], order) == [("B", "C"), ("E", "E")]
    assert launch.contiguous_blocks(["F", "A"], order) == [("A", "A"), ("F", "F")]
    assert launch.contiguous_blocks([], order) == []


def test_register_symbols_adds_only_new_keys():
    with dg.instance_for_test() as instance:
        assert launch.register_symbols(instance, ["SPY", "AAPL"]) == ["SPY", "AAPL"]
        assert launch.register_symbols(instance, ["AAPL", "MSFT", "MSFT"]) == ["MSFT"]
        assert instance.get_dynamic_partitions("symbol") == ["SPY", "AAPL", "MSFT"]


def test_launch_symbol_batch_starts_the_cli_detached(pipeline_env, monkeypatch):
    calls = []

    class FakePopen:
        def __init__(self, args, **kwargs):
            calls.append((args, kwargs))
            self.pid = 4242

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    reply = launch.launch_symbol_batch("2024-06-28")
    assert reply["status"] == "launched" and reply["date"] == "2024-06-28" and reply["pid"] == 4242
    args, kwargs = calls[0]
    assert args == [sys.executable, "-m", "symbol_pipeline.cli", "run", "--date", "2024-06-28"]
    assert kwargs["start_new_session"] is True
    with pytest.raises(NotATradingDayError):
        launch.launch_symbol_batch("2024-06-29")


def test_symbol_batch_status_reads_the_latest_run(pipeline_env, monkeypatch):
    with dg.instance_for_test() as instance:
        monkeypatch.setattr(launch, "get_instance", lambda: _borrowed(instance))
        assert launch.symbol_batch_status() == {"status": "never_run"}
        instance.add_run(dg.DagsterRun(job_name="symbol_layer_job", run_id="r-1", status=dg.DagsterRunStatus.FAILURE,
                                       tags={"dagster/asset_partition_range_start": "2024-06-28|A"}))
        status = launch.symbol_batch_status()
    assert status["status"] == "FAILURE" and status["run_id"] == "r-1"
    assert status["range_start"] == "2024-06-28|A"


class _borrowed:
    """The test's instance as a context manager that does not dispose of it."""

    def __init__(self, instance):
        self.instance = instance

    def __enter__(self):
        return self.instance

    def __exit__(self, *exc):
        return False
