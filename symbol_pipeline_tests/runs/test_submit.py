"""runs.submit: what the CLI and the HTTP API use to start and follow symbol-layer runs."""

import dagster as dg

from symbol_pipeline.runs import keys, submit


def test_contiguous_blocks_follow_the_dynamic_order():
    order = ["A", "B", "C", "D", "E", "F"]
    assert keys.contiguous_blocks(["B", "C", "E"], order) == [("B", "C"), ("E", "E")]
    assert keys.contiguous_blocks(["F", "A"], order) == [("A", "A"), ("F", "F")]
    assert keys.contiguous_blocks([], order) == []


def test_register_symbols_adds_only_new_keys():
    with dg.instance_for_test() as instance:
        assert submit.register_symbols(instance, ["SPY", "AAPL"]) == ["SPY", "AAPL"]
        assert submit.register_symbols(instance, ["AAPL", "MSFT", "MSFT"]) == ["MSFT"]
        assert instance.get_dynamic_partitions("symbol") == ["SPY", "AAPL", "MSFT"]


def test_symbol_batch_status_reads_the_latest_daily_run():
    with dg.instance_for_test() as instance:
        assert submit.symbol_batch_status(instance) == {"status": "never_run"}
        instance.add_run(dg.DagsterRun(job_name="symbol_layer_job", run_id="r-1", status=dg.DagsterRunStatus.FAILURE,
                                       tags={"dagster/asset_partition_range_start": "2024-06-28|A",
                                             keys.RUN_KIND_TAG: keys.DAILY_RUN_KIND}))
        # An onboarding run afterwards is not the daily batch.
        instance.add_run(dg.DagsterRun(job_name="symbol_layer_job", run_id="r-2", status=dg.DagsterRunStatus.SUCCESS,
                                       tags={keys.RUN_KIND_TAG: keys.ONBOARDING_RUN_KIND}))
        status = submit.symbol_batch_status(instance)
    assert status["status"] == "FAILURE" and status["run_id"] == "r-1"
    assert status["range_start"] == "2024-06-28|A" and status["counts"] == {}


def test_keys_round_trip_and_range_tags():
    key = keys.date_symbol_key("2024-06-28", "BRK.B")
    assert str(key) == "2024-06-28|BRK.B"
    assert keys.split_key(str(key)) == ("2024-06-28", "BRK.B") == keys.split_key(key)
    assert keys.parse_date_key("2024-06-28|A").isoformat() == "2024-06-28" == keys.parse_date_key("2024-06-28").isoformat()
    dates, symbols = keys.dates_and_symbols(["2024-06-28|B", "2024-06-27|A", "2024-06-28|A"])
    assert [d.isoformat() for d in dates] == ["2024-06-27", "2024-06-28"] and symbols == ["A", "B"]
    tags = keys.range_tags("2024-06-27", "2024-06-28", "B", "D")
    order = ["A", "B", "C", "D", "E"]
    assert keys.symbols_in_range(order, tags) == ["B", "C", "D"]
    assert keys.dates_in_range(tags) == ("2024-06-27", "2024-06-28")
    assert keys.symbols_in_range(order, {keys.PARTITION_TAG: "2024-06-28|E"}) == ["E"]
    assert keys.symbols_in_range(order, keys.range_tags("2024-06-28", "2024-06-28", "X", "D")) == []


class _Job:
    def __init__(self, outcomes: dict[str, bool], executed: list[dict]):
        self.outcomes, self.executed = outcomes, executed

    def execute_in_process(self, instance, tags, raise_on_error, run_id=None, run_config=None):
        if run_id is None:  # the portfolio refresh
            return type("Result", (), {"success": True, "run_id": "refresh"})()
        self.executed.append({**tags, "run_id": run_id})
        return type("Result", (), {"success": self.outcomes.get(tags.get("part", ""), True), "run_id": run_id})()


class _Defs:
    """Definitions whose jobs record what they were asked to execute."""

    def __init__(self, outcomes: dict[str, bool]):
        self.executed: list[dict] = []
        self.jobs: list[str] = []
        self.outcomes = outcomes

    def resolve_job_def(self, name):
        self.jobs.append(name)
        return _Job(self.outcomes, self.executed)


def _plan():
    from types import SimpleNamespace

    row = SimpleNamespace(symbol="NEWCO")
    return SimpleNamespace(claimed=[row, row], new_keys=["NEWCO"])


def test_onboarding_here_executes_every_request_then_settles_and_refreshes(monkeypatch):
    """`symbol-pipeline onboard` without a daemon: the sensor's run requests on the one in-process
    path (each run tagged with this process, its id known before it starts), every one of them
    whatever one's outcome, then the symbols settle and, when all succeeded, the portfolios refresh."""
    settled = []
    monkeypatch.setattr(submit.onboarding, "settle_pending", lambda engine, symbols, policy: settled.append(symbols))
    requests = [dg.RunRequest(run_key=part, tags={"part": part}) for part in ("latest", "history")]
    for outcomes, refreshed in (({}, True), ({"latest": False}, False)):
        settled.clear()
        defs = _Defs(outcomes)
        run_ids: list[str] = []
        with dg.instance_for_test() as instance:
            result = submit.run_onboarding(None, instance, defs, _plan(), requests, submit.onboarding.DEFAULT_RECOVERY,
                                           run_ids=run_ids)
            assert instance.get_dynamic_partitions("symbol") == ["NEWCO"]
        assert [e["part"] for e in defs.executed] == ["latest", "history"]
        assert all(e[keys.PID_TAG] and e[keys.HOST_TAG] for e in defs.executed)
        assert result.run_ids == run_ids == [e["run_id"] for e in defs.executed]
        assert result.success is refreshed
        assert settled == [["NEWCO", "NEWCO"]]
        assert (submit.PORTFOLIO_JOB in defs.jobs) is refreshed


def test_symbol_blocks_cover_the_partition_or_the_named_symbols():
    """One split of a run into symbol ranges, for the CLI's runs and the request sensor's alike."""
    with dg.instance_for_test() as instance:
        assert submit.symbol_blocks(instance, None) == []
        submit.register_symbols(instance, ["A", "B", "C", "D"])
        assert submit.symbol_blocks(instance, None) == [("A", "D")]
        assert submit.symbol_blocks(instance, ["D", "A", "B"]) == [("A", "B"), ("D", "D")]
