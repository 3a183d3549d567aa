"""Day after day (issue 17): one partitions definition in every process, a move that rebuilds
nothing, retention bounded by the window, status equal to the data throughout.

Clocks are set by replacing `lib.sessions.latest_completed_session`, the one function through which
the project reads the time of day; sessions in 2024, so the synthetic market has them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from dagster_shared.check import CheckError

from symbol_pipeline.defs.partitions import symbol_date_partitions, trading_date_partitions
from symbol_pipeline.lib import sessions
from symbol_pipeline.lib.factors import REGRESSOR_ETFS
from symbol_pipeline.runs import window as window_runs
from symbol_pipeline.runs.instance import INSTANCE_CLASS, sqlite_storage
from symbol_pipeline.runs.submit import register_symbols, run_symbol_layer
from symbol_pipeline.services import window
from symbol_pipeline.storage import coverage
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.dialect import cached_engine

SESSIONS = 4
MONDAY = dt.date(2024, 6, 3)      # the first clock: after Monday's close
TUESDAY = dt.date(2024, 6, 4)     # the next session
SYMBOLS = ["SYN0001", "SYN0002", "SYN0003"]

pytestmark = pytest.mark.slow


def _clock(monkeypatch, day: dt.date) -> None:
    monkeypatch.setattr(sessions, "latest_completed_session", lambda now=None: day)


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(request, tmp_path, monkeypatch):
    """The project's settings and a Dagster home whose dagster.yaml names the project's instance
    class and storages: the quick start's SQLite ones, or deploy/dagster.yaml's PostgreSQL ones."""
    home = tmp_path / "home"
    home.mkdir()
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sp.sqlite'}"
        storage = sqlite_storage(home / "storage")
        lines = []
        for name, spec in storage.items():
            lines += [f"{name}:", f"  module: {spec['module']}", f"  class: {spec['class']}", "  config:",
                      f"    base_dir: {spec['config']['base_dir']}"]
        storages = "\n".join(lines) + "\n"
    else:
        url = request.getfixturevalue("new_pg_database")("sp_window_data")
        dagster_url = request.getfixturevalue("new_pg_database")("sp_window_dagster")
        storages = "".join(
            f"{name}:\n  module: {module}\n  class: {cls}\n  config:\n    postgres_url: {dagster_url}\n"
            for name, module, cls in (
                ("run_storage", "dagster_postgres.run_storage", "PostgresRunStorage"),
                ("event_log_storage", "symbol_pipeline.runs.pg_events", "BatchingPostgresEventLogStorage"),
                ("schedule_storage", "dagster_postgres.schedule_storage", "PostgresScheduleStorage"),
            )
        )
    (home / "dagster.yaml").write_text(
        f"instance_class:\n  module: {INSTANCE_CLASS['module']}\n  class: {INSTANCE_CLASS['class']}\n"
        + storages + "telemetry:\n  enabled: false\npython_logs:\n  python_log_level: INFO\n"
    )
    for key, value in {"DAGSTER_HOME": str(home), "SYMBOL_PIPELINE_DATABASE_URL": url,
                       "SYMBOL_PIPELINE_PRICE_SOURCE": "synthetic", "SYMBOL_PIPELINE_SYNTHETIC_SYMBOLS": "3",
                       "SYMBOL_PIPELINE_DATA_DIR": str(tmp_path / "data"),
                       "SYMBOL_PIPELINE_PARTITION_SESSIONS": str(SESSIONS),
                       "DAGSTER_EVENT_BATCH_SIZE": "1000",
                       "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SYMBOL_PIPELINE_PARTITIONS_START", raising=False)
    yield url
    cached_engine.cache_clear()


def _defs() -> dg.Definitions:
    from symbol_pipeline.definitions import build_definitions

    return build_definitions()


def _dates_def(defs: dg.Definitions) -> dg.TimeWindowPartitionsDefinition:
    node = defs.resolve_asset_graph().get(dg.AssetKey("market_beta"))
    return node.partitions_def.get_partitions_def_for_dimension("date")


def _status(instance, defs, asset: str) -> set[str]:
    """The materialised partitions of `asset` as the UI's status cache says."""
    partitions_def = defs.resolve_asset_graph().get(dg.AssetKey(asset)).partitions_def
    value = get_and_update_asset_status_cache_value(instance, dg.AssetKey(asset), partitions_def)
    with partition_loading_context(dynamic_partitions_store=instance):
        return {str(k) for k in value.deserialize_materialized_partition_subsets(partitions_def).get_partition_keys()}


def _stored_betas(url: str, first: dt.date, last: dt.date) -> set[str]:
    with get_engine(url).connect() as conn:
        frame = coverage.beta_keys(conn, None, first, last)
    frame = frame[frame["factor"] == "market_beta"]
    return {f"{d}|{s}" for d, s in zip(frame["date"], frame["symbol"])}


class _Reads:
    """Counts the full event-log reads a status rebuild makes (`after_cursor` None)."""

    def __init__(self, instance, monkeypatch):
        self.full: list[str] = []
        original = instance.get_materialized_partitions

        def spy(asset_key, before_cursor=None, after_cursor=None):
            if after_cursor is None:
                self.full.append(asset_key.to_user_string())
            return original(asset_key, before_cursor=before_cursor, after_cursor=after_cursor)

        monkeypatch.setattr(instance, "get_materialized_partitions", spy)


def test_the_old_rule_fails_a_worker_loaded_after_the_window_moved(tmp_path, monkeypatch):
    """What main did: each process computed its own first date from its clock. The run the Monday
    code server created over its first date fails in a Tuesday worker, inside Dagster."""
    monday = trading_date_partitions(sessions.window_start(MONDAY, SESSIONS).isoformat())
    tuesday = trading_date_partitions(sessions.window_start(TUESDAY, SESSIONS).isoformat())
    first = monday.get_first_partition_key()
    assert first < tuesday.get_first_partition_key()
    with pytest.raises((CheckError, DagsterInvariantViolationError), match="before the partitions definition start"):
        tuesday.get_partition_keys_in_range(dg.PartitionKeyRange(first, MONDAY.isoformat()))


def test_processes_at_different_clocks_build_one_definition_and_the_run_succeeds(deployment, monkeypatch):
    _clock(monkeypatch, MONDAY)
    monday_defs = _defs()  # the code server, loaded Monday evening
    first = _dates_def(monday_defs).get_first_partition_key()
    assert first == sessions.window_start(MONDAY, SESSIONS).isoformat()
    _clock(monkeypatch, TUESDAY)
    tuesday_defs = _defs()  # a run worker, started Tuesday evening, before any move
    assert _dates_def(tuesday_defs) == _dates_def(monday_defs)
    assert (_dates_def(tuesday_defs).get_serializable_unique_identifier()
            == _dates_def(monday_defs).get_serializable_unique_identifier())
    # The onboarding sensor's history run over the Monday definitions' first date, executed by
    # the Tuesday worker: it succeeds, and its partitions are stored.
    with dg.DagsterInstance.get() as instance:
        register_symbols(instance, [*REGRESSOR_ETFS, *SYMBOLS])
        result = run_symbol_layer(instance, tuesday_defs, dt.date.fromisoformat(first), MONDAY, SYMBOLS)
        assert result.success
        assert f"{first}|SYN0001" in _status(instance, tuesday_defs, "market_beta")


def test_the_holidays_do_not_depend_on_the_day_a_process_started():
    """The calendar has a fixed end and the exclusions a horizon set by the first date: nothing of
    the day a process builds them (on main: 18 vs 20 holidays for 2026-12-04 vs 2027-01-20)."""
    first = trading_date_partitions("2026-11-04")
    sessions._calendar.cache_clear()
    second = trading_date_partitions("2026-11-04")
    assert first.exclusions == second.exclusions
    assert sessions.exclusion_horizon("2026-11-04") == dt.date(2029, 12, 31)
    # Three years of NYSE holidays on weekdays, Thanksgiving 2027 among them.
    assert len(first.exclusions) >= 27
    assert dt.date(2027, 11, 25) in sessions.non_session_weekdays("2026-11-04", sessions.exclusion_horizon("2026-11-04"))


def test_adding_symbols_rebuilds_no_status_cache_and_a_key_deleted_and_added_again_is_not_stale(
        deployment, monkeypatch):
    _clock(monkeypatch, MONDAY)
    defs = _defs()
    with dg.DagsterInstance.get() as instance:
        register_symbols(instance, [*REGRESSOR_ETFS, *SYMBOLS])
        assert run_symbol_layer(instance, defs, MONDAY, MONDAY, SYMBOLS).success
        before = _status(instance, defs, "market_beta")
        reads = _Reads(instance, monkeypatch)
        instance.add_dynamic_partitions("symbol", ["SYN0009"])
        after = _status(instance, defs, "market_beta")
        assert reads.full == []  # incremental: nothing re-read from the event log
        assert after == before and not any(k.endswith("|SYN0009") for k in after)

        # Deleted (the UI can), then added again: the generation changes twice, the next read
        # rebuilds from the event log, and the status is what the data says, not the cache.
        instance.delete_dynamic_partition("symbol", "SYN0002")
        without = _status(instance, defs, "market_beta")
        assert not any(k.endswith("|SYN0002") for k in without)
        instance.add_dynamic_partitions("symbol", ["SYN0002"])
        reads.full.clear()
        again = _status(instance, defs, "market_beta")
        assert reads.full == ["market_beta"]
        assert again == before == _stored_betas(deployment, MONDAY, MONDAY) & again


def test_the_move_drops_what_left_the_window_and_the_next_read_rebuilds_nothing(deployment, monkeypatch):
    _clock(monkeypatch, TUESDAY)
    defs = _defs()
    first = _dates_def(defs).get_first_partition_key()
    with dg.DagsterInstance.get() as instance:
        register_symbols(instance, [*REGRESSOR_ETFS, *SYMBOLS])
        start = dt.date.fromisoformat(first)
        assert run_symbol_layer(instance, defs, start, TUESDAY, SYMBOLS).success
        statuses = {a: _status(instance, defs, a) for a in window_runs.SYMBOL_ASSETS}
        assert any(k.startswith(first) for k in statuses["market_beta"])

        # Two sessions later the window moves by two sessions.
        later = sessions.session_offset(TUESDAY, 2)
        _clock(monkeypatch, later)
        engine = get_engine(deployment)
        rule = window.WindowRule(sessions=SESSIONS)
        report = window_runs.move_window(instance, engine, rule, _partitions_for, now=pd.Timestamp(later))
        new_first = sessions.window_start(later, SESSIONS)
        assert report.plan.new_start == new_first and report.plan.moves
        assert report.pruned["partition_events"] > 0
        assert set(report.restamped.values()) == {"re-stamped"}

        # The event log holds nothing before the window for these assets.
        with instance.event_log_storage.index_connection() as conn:
            old = conn.execute(sa.text(
                "SELECT count(*) FROM event_logs WHERE partition IS NOT NULL AND partition < :f"), {"f": str(new_first)}
            ).scalar()
        assert old == 0
        # Every process builds the moved window; its first status read re-reads nothing.
        moved = _defs()
        assert _dates_def(moved).get_first_partition_key() == new_first.isoformat()
        reads = _Reads(instance, monkeypatch)
        for asset, before in statuses.items():
            assert _status(instance, moved, asset) == {k for k in before if k >= new_first.isoformat()}
        assert reads.full == []
        # Status equals the data inside the window.
        assert _status(instance, moved, "market_beta") == _stored_betas(deployment, new_first, TUESDAY)
        # A second move at the same clock changes nothing (idempotent).
        again = window_runs.move_window(instance, engine, rule, _partitions_for, now=pd.Timestamp(later))
        assert not again.plan.moves and again.pruned["partition_events"] == 0


def _partitions_for(first: dt.date) -> dg.PartitionsDefinition:
    return symbol_date_partitions(trading_date_partitions(first.isoformat()))


def test_the_move_defers_to_a_run_in_flight(deployment, monkeypatch):
    _clock(monkeypatch, MONDAY)
    defs = _defs()
    first = dt.date.fromisoformat(_dates_def(defs).get_first_partition_key())
    with dg.DagsterInstance.get() as instance:
        register_symbols(instance, SYMBOLS)
        run = instance.create_run_for_job(
            defs.resolve_job_def("symbol_layer_job"), status=dg.DagsterRunStatus.NOT_STARTED,
            tags={"dagster/asset_partition_range_start": f"{first}|SYN0001",
                  "dagster/asset_partition_range_end": f"{MONDAY}|SYN0003"},
        )
        assert window_runs.earliest_in_flight(instance) == first
        later = sessions.session_offset(MONDAY, 3)
        _clock(monkeypatch, later)
        report = window_runs.move_window(instance, get_engine(deployment), window.WindowRule(sessions=SESSIONS),
                                         _partitions_for, now=pd.Timestamp(later))
        assert report.plan.new_start == first and "deferred" in report.plan.reason
        instance.report_run_canceled(run)
        report = window_runs.move_window(instance, get_engine(deployment), window.WindowRule(sessions=SESSIONS),
                                         _partitions_for, now=pd.Timestamp(later))
        assert report.plan.new_start == sessions.window_start(later, SESSIONS)


def test_definitions_say_what_to_do_when_the_database_is_unreachable(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMBOL_PIPELINE_DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    monkeypatch.delenv("SYMBOL_PIPELINE_PARTITIONS_START", raising=False)
    with pytest.raises(window.WindowUnavailableError, match="SYMBOL_PIPELINE_PARTITIONS_START"):
        _defs()


def test_a_pinned_start_needs_no_database(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("SYMBOL_PIPELINE_PARTITIONS_START", "2024-05-01")
    engine = sa.create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    rule = window.WindowRule(pinned_start=dt.date(2024, 5, 1))
    assert window.first_date(engine, rule) == dt.date(2024, 5, 1)
