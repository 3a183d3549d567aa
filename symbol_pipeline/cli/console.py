"""What `run`, `backfill` and `onboard` show: a progress display while the runs go on, a summary after.

Every line a command prints for the person at the terminal goes through its RunConsole (stderr).

The runs execute in this process (no daemon serves the instance) or are asked of the daemon
through a request row; either way they are followed in the instance's event log by the same
code (runs.follow), so the display and the summary do not depend on where the runs executed.
Dagster's own per-event lines appear only with --verbose.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence

import dagster as dg
from rich.console import Console as RichConsole
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import Engine

from symbol_pipeline.runs import follow as following
from symbol_pipeline.runs import requests as run_requests
from symbol_pipeline.runs.follow import RunFollower, Summary

# Dagster flags its beta and preview APIs when the definitions are imported, before main() runs:
# lines a CLI user can do nothing about. The CLI's modules import this one before the definitions.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

PLAIN_INTERVAL_SECONDS = 10.0
MAX_REASONS, MAX_EXAMPLES = 5, 5
# The console logger above CRITICAL: no per-event lines from Dagster in a default run.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class RunConsole:
    """Progress on stderr: a rich bar on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, verbose: bool = False, stream=None, interval: float = PLAIN_INTERVAL_SECONDS):
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self.interval = interval
        self._bar: Progress | None = None
        self._task = None
        self._last_line: float | None = None
        self._last_text = ""
        if not verbose:
            # Dagster's python loggers (instance, sensors) print warnings a user cannot act on.
            logging.getLogger("dagster").setLevel(logging.ERROR)

    @property
    def run_config(self) -> dict | None:
        return None if self.verbose else QUIET_RUN_CONFIG

    def line(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(message, highlight=False, markup=False)
        else:
            print(message, file=self.stream, flush=True)

    def update(self, progress: following.Progress) -> None:
        done, total = progress.materialized, progress.total
        # A first run or an onboarding also records the history it loaded inside the range (one
        # event per partition, docs/architecture.md, "Partition status is the database"): the total grows to what was recorded.
        total = max(total, done) if total else total
        if self.stream.isatty() and not self.verbose:
            if self._bar is None:
                self._bar = Progress(
                    TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=RichConsole(file=self.stream), transient=True,
                )
                self._bar.start()
                self._task = self._bar.add_task("starting", total=total)
            self._bar.update(self._task, completed=done, total=total, description=progress.stage[:40])
            return
        now = time.monotonic()
        share = f" ({100 * done / total:.0f}%)" if total else ""
        text = f"  {done}/{total or '?'} partitions materialised{share} · {progress.stage}"
        due = self._last_line is None or now - self._last_line >= self.interval
        if due and text != self._last_text:
            self._last_line, self._last_text = now, text
            self.line(f"  {progress.seconds:5.0f}s{text}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def summary(self, summary: Summary, what: str, next_steps: Sequence[str]) -> int:
        """Print the summary; the exit code it stands for."""
        self.close()
        outcome = {0: "done", 2: "done with failed symbols", 1: "FAILED"}[summary.exit_code]
        self.line(
            f"{what}: {outcome} in {summary.seconds:.1f}s · {summary.symbols} symbols, {summary.computed} computed, "
            f"{len(summary.factors)} factors, {summary.insufficient} insufficient data, {summary.capped} capped"
        )
        if summary.failures:
            count = sum(len(v) for v in summary.failures.values())
            self.line(f"failed symbols ({count}):")
            groups = sorted(summary.failures.items(), key=lambda kv: -len(kv[1]))
            for reason, symbols in groups[:MAX_REASONS]:
                more = f" and {len(symbols) - MAX_EXAMPLES} more" if len(symbols) > MAX_EXAMPLES else ""
                self.line(f"  {len(symbols):>5}  {reason[:100]}: {', '.join(symbols[:MAX_EXAMPLES])}{more}")
            if len(groups) > MAX_REASONS:
                self.line(f"  ... and {len(groups) - MAX_REASONS} other reasons")
        for error in summary.errors[:3]:
            self.line(f"  error: {error.splitlines()[0][:200] if error else ''}")
        if summary.failed_runs:
            self.line(f"failed run(s): {', '.join(summary.failed_runs)}")
        self.line(f"run(s): {', '.join(summary.run_ids) or 'none'}")
        for step in next_steps:
            self.line(f"next: {step}")
        return summary.exit_code


@contextlib.contextmanager
def sigterm_as_sigint() -> Iterator[None]:
    """A SIGTERM interrupts like Ctrl-C, so that Dagster records the in-process run as failed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def execute_here(console: RunConsole, follower: RunFollower, launch: Callable[[list[str]], object]) -> Summary:
    """Run `launch(run_ids)` in this process (main thread: Dagster handles the interrupt) while a
    thread follows, in the event log, the runs whose ids it appends to `run_ids`: runs.submit's
    run_symbol_layer (`run`, `backfill`) or run_onboarding (`onboard`)."""
    run_ids: list[str] = []
    finished = threading.Event()
    watcher = threading.Thread(
        target=following.follow, args=(follower, lambda: list(run_ids), finished.is_set, console.update),
        daemon=True,
    )
    watcher.start()
    try:
        with sigterm_as_sigint():
            launch(run_ids)
    finally:
        finished.set()
        watcher.join()
    return follower.summary()


def request_and_follow(
    engine: Engine, instance: dg.DagsterInstance, console: RunConsole, follower: RunFollower,
    kind: str, first_date, last_date, symbols: Sequence[str] | None, requested_by: str,
) -> Summary:
    """Ask the daemon for the runs (a request row) and follow them until the request ends."""
    request_id = run_requests.request_runs(engine, instance, kind, first_date, last_date, symbols, requested_by)
    console.line(f"a daemon serves this instance: request {request_id} written; following its runs")

    def done() -> bool:
        row = run_requests.get_request(engine, request_id)
        return row is None or not row.is_open

    return following.follow(
        follower, lambda: [r.run_id for r in run_requests.runs_of_request(instance, request_id)], done,
        console.update, interval=1.0,
    )
