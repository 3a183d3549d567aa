"""The run follower against a real instance: progress from the event log, the summary from metadata."""

import subprocess
import sys

import dagster as dg

from symbol_pipeline.runs import follow, submit
from symbol_pipeline.runs.keys import HOST_TAG, PID_TAG


@dg.multi_asset(specs=[dg.AssetSpec("symbol_prices"), dg.AssetSpec("market_beta"), dg.AssetSpec("ir_beta")])
def _layer():
    yield dg.MaterializeResult(asset_key="symbol_prices", metadata={
        "symbols": 5, "fetch_failures": 3,
        "failed_symbols": dg.MetadataValue.json({"XX": "no data file /d/XX.csv", "YY": "no data file /d/YY.csv",
                                                 "ZZ": "ZZ is delisted"}),
    })
    for name in ("market_beta", "ir_beta"):
        yield dg.MaterializeResult(asset_key=name, metadata={"symbols_computed": 2, "insufficient_data": 1, "capped": 1})


_job = dg.define_asset_job(submit.SYMBOL_LAYER_JOB, selection=["symbol_prices", "market_beta", "ir_beta"])
_defs = dg.Definitions(assets=[_layer], jobs=[_job])


def test_the_follower_reads_progress_and_the_summary_from_the_event_log():
    with dg.instance_for_test() as instance:
        follower = follow.RunFollower(instance, total=3)
        run_id = "00000000-0000-0000-0000-00000000f011"
        assert follower.poll([run_id]).materialized == 0  # not created yet: nothing to read
        _defs.resolve_job_def(submit.SYMBOL_LAYER_JOB).execute_in_process(instance=instance, run_id=run_id)
        summary = follow.follow(follower, lambda: [run_id], lambda: True, lambda _p: None)
        assert follower.progress.materialized == 3
        assert summary.run_ids == [run_id] and summary.failed_runs == []
        assert (summary.symbols, summary.computed, summary.insufficient, summary.capped) == (5, 2, 1, 1)
        assert summary.factors == ["market_beta", "ir_beta"]
        assert summary.failures == {"no data file <path>": ["XX", "YY"], "<symbol> is delisted": ["ZZ"]}
        assert summary.exit_code == 2
        # A second poll reads nothing twice.
        assert follower.poll([run_id]).materialized == 3


def test_exit_codes():
    base = dict(run_ids=["r"], failed_runs=[], errors=[], symbols=3, computed=3, factors=[], insufficient=0,
                capped=0, failures={}, seconds=1.0)
    assert follow.Summary(**base).exit_code == 0
    assert follow.Summary(**{**base, "failures": {"x": ["A"]}}).exit_code == 2
    assert follow.Summary(**{**base, "failed_runs": ["r"]}).exit_code == 1
    assert follow.Summary(**{**base, "computed": 0}).exit_code == 1


def test_a_run_left_started_by_a_dead_process_is_failed():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with dg.instance_for_test() as instance:
        tags = {**submit.local_run_tags(), PID_TAG: str(dead.pid)}
        instance.add_run(dg.DagsterRun(job_name="symbol_layer_job", run_id="orphan", status=dg.DagsterRunStatus.STARTED,
                                       tags=tags))
        instance.add_run(dg.DagsterRun(job_name="symbol_layer_job", run_id="alive", status=dg.DagsterRunStatus.STARTED,
                                       tags=submit.local_run_tags()))
        instance.add_run(dg.DagsterRun(job_name="symbol_layer_job", run_id="elsewhere",
                                       status=dg.DagsterRunStatus.STARTED, tags={**tags, HOST_TAG: "other-host"}))
        assert submit.fail_orphaned_runs(instance) == ["orphan"]
        assert instance.get_run_by_id("orphan").status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id("alive").status == dg.DagsterRunStatus.STARTED
