"""The position-change sensor: one run of the portfolio job per burst of changes.

Each change is taken exactly once, across two hazards:

* the daemon launched the run and died before storing the cursor: the run carries the cursor it
  was launched with (a tag), and the next tick starts from the newer of that and the stored one;
* on PostgreSQL change ids are drawn at insert and committed in any order, so a change can appear
  below one already taken: an id missing below the newest taken is kept in the cursor as a gap
  and taken when it appears. A gap still empty after GAP_SECONDS was a rolled-back write (an
  API process killed mid-write leaves one) and is forgotten.
"""

from __future__ import annotations

import json
import time

import dagster as dg

from symbol_pipeline.defs.portfolios.jobs import portfolio_exposures_job
from symbol_pipeline.defs.resources import DatabaseResource
from symbol_pipeline.runs.keys import PORTFOLIO_RUN_KIND, RUN_KIND_TAG
from symbol_pipeline.runs.submit import PORTFOLIO_JOB, portfolio_run_config
from symbol_pipeline.services import portfolio as service

SENSOR_NAME = "position_change_sensor"
CURSOR_TAG = "symbol_pipeline/change_cursor"
GAP_SECONDS = 600.0
Cursor = tuple[int, dict[int, float]]


def parse_cursor(text: str | None) -> Cursor:
    """(last change id taken, {id missing below it: when first missed}); a plain id has no gaps."""
    if not text:
        return 0, {}
    if text.isdigit():
        return int(text), {}
    data = json.loads(text)
    return int(data["last"]), {int(k): float(v) for k, v in data["gaps"].items()}


def _format_cursor(last: int, gaps: dict[int, float]) -> str:
    return json.dumps({"last": last, "gaps": gaps}) if gaps else str(last)


def _launched_cursor(instance: dg.DagsterInstance) -> Cursor:
    """The cursor the newest run of this sensor was launched with (Dagster tags a sensor's runs)."""
    runs = instance.get_runs(dg.RunsFilter(job_name=PORTFOLIO_JOB, tags={"dagster/sensor_name": SENSOR_NAME}), limit=1)
    return parse_cursor(runs[0].tags.get(CURSOR_TAG)) if runs else (0, {})


@dg.sensor(name=SENSOR_NAME, job=portfolio_exposures_job, minimum_interval_seconds=15,
           default_status=dg.DefaultSensorStatus.RUNNING)
def position_change_sensor(context: dg.SensorEvaluationContext, database: DatabaseResource):
    """One run for every burst of position changes, over just the portfolios that changed."""
    # The stored cursor first: on a tie it holds the newer gaps (a skipped tick updates only it).
    last, gaps = max(parse_cursor(context.cursor), _launched_cursor(context.instance), key=lambda c: c[0])
    now = time.time()
    gaps = {i: seen for i, seen in gaps.items() if now - seen < GAP_SECONDS}
    rows = service.changes_after(database.engine(), min([last, *(i - 1 for i in gaps)]))
    changes = [c for c in rows if c[0] > last or c[0] in gaps]
    taken = {c[0] for c in changes}
    top = max(taken | {last})
    gaps.update({i: now for i in range(last + 1, top) if i not in taken})
    gaps = {i: seen for i, seen in gaps.items() if i not in taken}
    cursor = _format_cursor(top, gaps)
    context.update_cursor(cursor)
    if not changes:
        return dg.SkipReason(f"no portfolio changes after change #{last}")
    first = changes[0][0]
    portfolio_ids = sorted({pid for _, pid, _ in changes})
    return dg.RunRequest(
        run_key=f"portfolio-changes-{first}-{top}",
        run_config=portfolio_run_config(portfolio_ids),
        tags={"symbol_pipeline/change_range": f"{first}-{top}", "symbol_pipeline/portfolios": str(len(portfolio_ids)),
              CURSOR_TAG: cursor, RUN_KIND_TAG: PORTFOLIO_RUN_KIND},
    )
