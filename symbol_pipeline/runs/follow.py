"""Following runs through the instance's event log: progress while they run, a summary after.

The same code follows a run this process executes and one the daemon launched: both write the
same events to the same instance. Progress counts partition materialisations; the summary reads
the assets' materialisation metadata (symbols_computed, insufficient_data, capped, failed_symbols).
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import dagster as dg

from symbol_pipeline.lib.factors import BETA_GROUPS
from symbol_pipeline.runs.submit import SYMBOL_LAYER_JOB

PRICES_ASSET = "symbol_prices"
# One materialisation per partition and asset: prices, the beta families, the daily metrics.
SYMBOL_ASSET_COUNT = len(BETA_GROUPS) + 2
_EVENTS = {
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.RUN_FAILURE,
}
_PAGE = 5000


def expected_materializations(n_dates: int, n_symbols: int) -> int:
    """factor_returns per date, then every symbol asset per date × symbol."""
    return n_dates * (1 + n_symbols * SYMBOL_ASSET_COUNT)


@dataclass
class RunState:
    run_id: str
    job_name: str
    status: str = "QUEUED"
    # Latest metadata per asset key (every partition of one result carries the same values).
    metadata: dict[str, dict] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass
class Progress:
    """What the console shows while runs go on."""

    runs: dict[str, RunState] = field(default_factory=dict)
    materialized: int = 0
    total: int | None = None
    stage: str = "waiting for the run to start"
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


@dataclass
class Summary:
    run_ids: list[str]
    failed_runs: list[str]
    errors: list[str]
    symbols: int
    computed: int
    factors: list[str]
    insufficient: int
    capped: int
    # reason (symbol names and paths taken out) -> the symbols that failed for it
    failures: dict[str, list[str]]
    seconds: float

    @property
    def exit_code(self) -> int:
        """0 every symbol computed, 2 some symbols failed, 1 a run failed or nothing was computed."""
        if self.failed_runs or not self.run_ids or self.computed == 0:
            return 1
        return 2 if self.failures else 0


def _value(value):
    return getattr(value, "value", value)


class RunFollower:
    """Reads the new events of a set of runs on each poll; thread-safe for one poller."""

    def __init__(self, instance: dg.DagsterInstance, total: int | None = None):
        self.instance = instance
        self.progress = Progress(total=total)
        self._cursors: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def poll(self, run_ids: Iterable[str]) -> Progress:
        with self._lock:
            for run_id in run_ids:
                self._poll_run(run_id)
        return self.progress

    def _poll_run(self, run_id: str) -> None:
        run = self.instance.get_run_by_id(run_id)
        if run is None:
            return
        state = self.progress.runs.setdefault(run_id, RunState(run_id, run.job_name))
        while True:
            conn = self.instance.get_records_for_run(run_id, cursor=self._cursors.get(run_id), of_type=_EVENTS, limit=_PAGE)
            for record in conn.records:
                self._apply(state, record.event_log_entry)
            self._cursors[run_id] = conn.cursor
            if not conn.has_more:
                break
        # Read after the events: a run that ended has written all of them.
        state.status = self.instance.get_run_by_id(run_id).status.value

    def _apply(self, state: RunState, entry) -> None:
        event = entry.dagster_event
        if event is None:
            return
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            self.progress.materialized += 1
            materialization = event.step_materialization_data.materialization
            name = materialization.asset_key.path[-1]
            self.progress.stage = name
            if materialization.metadata:  # one event per partition; the run's summary is on the last
                state.metadata[name] = {k: _value(v) for k, v in materialization.metadata.items()}
        elif event.event_type == dg.DagsterEventType.STEP_START:
            self.progress.stage = f"{state.job_name}: {event.step_key}"
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            state.errors.append(f"{event.step_key}: {error.message.strip() if error else 'failed'}")
        elif event.message:
            state.errors.append(event.message.strip())

    def summary(self) -> Summary:
        runs = list(self.progress.runs.values())
        failures: dict[str, list[str]] = defaultdict(list)
        symbols = computed = insufficient = capped = 0
        factors: dict[str, None] = {}
        for run in runs:
            if run.job_name != SYMBOL_LAYER_JOB:
                continue
            prices = run.metadata.get(PRICES_ASSET, {})
            symbols += int(prices.get("symbols", 0))
            for symbol, reason in (prices.get("failed_symbols") or {}).items():
                failures[failure_reason(symbol, str(reason))].append(symbol)
            betas = [name for name in BETA_GROUPS if name in run.metadata]
            for name in betas:
                factors.update(dict.fromkeys(BETA_GROUPS[name]))
            if betas:
                # One report feeds every beta family of a run: take it once.
                first = run.metadata[betas[0]]
                computed += int(first.get("symbols_computed", 0))
                insufficient += int(first.get("insufficient_data", 0))
                capped += int(first.get("capped", 0))
        return Summary(
            run_ids=[r.run_id for r in runs],
            failed_runs=[r.run_id for r in runs if r.status != dg.DagsterRunStatus.SUCCESS.value],
            errors=[e for r in runs for e in r.errors],
            symbols=symbols, computed=computed, factors=list(factors), insufficient=insufficient, capped=capped,
            failures=dict(failures), seconds=self.progress.seconds,
        )


def failure_reason(symbol: str, reason: str) -> str:
    """A reason that groups: the symbol's name and any file path taken out."""
    reason = re.sub(r"\S*[/\\]\S*", "<path>", reason)
    return re.sub(rf"(?<![A-Za-z0-9]){re.escape(symbol)}(?![A-Za-z0-9])", "<symbol>", reason).strip()


def follow(
    follower: RunFollower,
    run_ids: Callable[[], list[str]],
    done: Callable[[], bool],
    on_update: Callable[[Progress], None],
    interval: float = 0.5,
) -> Summary:
    """Poll until `done()`; then once more, so that the summary holds every event."""
    while True:
        finished = done()
        on_update(follower.poll(run_ids()))
        if finished:
            return follower.summary()
        time.sleep(interval)
