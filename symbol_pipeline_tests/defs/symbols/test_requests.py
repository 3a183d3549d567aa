"""run_request_sensor through its context: a request row becomes runs, in order, once."""

import datetime as dt

import dagster as dg

from symbol_pipeline.defs.resources import DatabaseResource
from symbol_pipeline.defs.symbols.requests import run_request_sensor
from symbol_pipeline.runs.keys import REQUEST_ID_TAG, REQUEST_PART_TAG, RUN_KIND_TAG
from symbol_pipeline.storage import run_requests as store

DAY = dt.date(2024, 6, 28)


def _tick(instance, url):
    return run_request_sensor(dg.build_sensor_context(instance=instance, resources={"database": DatabaseResource(url=url)}))


def test_the_sensor_requests_factor_returns_then_the_symbol_layer(sqlite_env, env_engine, instance):
    assert isinstance(_tick(instance, sqlite_env), dg.SkipReason)
    instance.add_dynamic_partitions("symbol", ["SPY", "AAPL"])
    rid = store.create_request(env_engine, "daily", DAY, DAY, ["AAPL"], "cli")
    first = _tick(instance, sqlite_env).run_requests
    assert [r.job_name for r in first] == ["factor_returns_job"]
    assert first[0].tags[REQUEST_ID_TAG] == str(rid) and first[0].tags[RUN_KIND_TAG] == "daily"
    # The tick's result was lost: the same run key is asked for again, which Dagster starts once.
    assert _tick(instance, sqlite_env).run_requests[0].run_key == first[0].run_key
    instance.add_run(dg.DagsterRun(job_name="factor_returns_job", run_id="f1", status=dg.DagsterRunStatus.SUCCESS,
                                   tags={**first[0].tags}))
    second = _tick(instance, sqlite_env).run_requests
    assert [r.job_name for r in second] == ["symbol_layer_job"]
    assert second[0].tags["dagster/asset_partition_range_start"] == "2024-06-28|AAPL"
    assert second[0].tags[REQUEST_PART_TAG] == "symbols:0"
    instance.add_run(dg.DagsterRun(job_name="symbol_layer_job", run_id="s1", status=dg.DagsterRunStatus.FAILURE,
                                   tags={**second[0].tags}))
    assert isinstance(_tick(instance, sqlite_env), dg.SkipReason)
    row = store.get_request(env_engine, rid)
    assert row.status == "failed" and row.run_ids == ["f1", "s1"]
    # The date is free again.
    store.create_request(env_engine, "daily", DAY, DAY, None, "cli")
