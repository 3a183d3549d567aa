"""Onboarding rules: which queued symbols to take, over which sessions, and when one is settled.

Dagster-free: the onboarding sensor turns a plan into run requests, the symbol-layer step
settles what its run computed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy.engine import Engine

from symbol_pipeline.lib import sessions
from symbol_pipeline.lib.factors import LONGEST_WINDOW
from symbol_pipeline.lib.symbols import contiguous_blocks
from symbol_pipeline.storage import lifecycle, universe
from symbol_pipeline.storage import onboarding as queue
from symbol_pipeline.storage.universe import OnboardingLimitError, capped_requests

__all__ = ["OnboardingLimitError", "RecoveryPolicy", "capped_requests"]

# A new symbol gets partitions for the longest beta window plus a margin: enough for a
# portfolio's "latest beta on or before" to find one on any recent as-of date, and for the
# spread betas' 180 sessions. The prices step fetches the history before the first date itself.
ONBOARDING_SESSIONS = LONGEST_WINDOW + 10
# Symbols per onboarding run: one tick claims at most this many queue rows.
ONBOARDING_BATCH = 200
LATEST_PRIORITY, HISTORY_PRIORITY = 10, 0


@dataclass(frozen=True)
class RecoveryPolicy:
    """How symbols recover (settings SYMBOL_PIPELINE_SYMBOL_RETRY_ATTEMPTS, _RETRY_DELAY_HOURS and
    _DELISTED_AFTER_SESSIONS): automatic retries of a failed fetch, the first delay (doubled for
    each later retry), and the sessions without a price after which a symbol is `delisted`."""

    retry_attempts: int = universe.DEFAULT_RETRY_ATTEMPTS
    retry_delay: dt.timedelta = universe.DEFAULT_RETRY_DELAY
    delisted_after_sessions: int = universe.DEFAULT_DELISTED_AFTER


DEFAULT_RECOVERY = RecoveryPolicy()


def requeue_due_retries(engine: Engine, now: pd.Timestamp | dt.datetime, limit: int = ONBOARDING_BATCH) -> list[str]:
    """`error` symbols whose automatic retry is due go back in the queue, below users' requests."""
    moment = pd.Timestamp(now).to_pydatetime()
    with engine.begin() as conn:
        due = lifecycle.due_retries(conn, moment, limit)
        return lifecycle.requeue(conn, due, requested_by=universe.RETRY_REQUESTER,
                                 priority=universe.RETRY_PRIORITY, reset_attempts=False)


def onboarding_dates(now: pd.Timestamp, first_partition: dt.date) -> tuple[dt.date, dt.date]:
    """[ONBOARDING_SESSIONS sessions back .. the latest completed session], within the partitions."""
    last = sessions.latest_completed_session(now)
    first = sessions.session_offset(last, -(ONBOARDING_SESSIONS - 1))
    return max(first, first_partition), last


@dataclass(frozen=True)
class PlannedRun:
    """One onboarding run: sessions first_date..last_date × symbols first_symbol..last_symbol."""

    part: str  # "latest" or "history"
    first_date: dt.date
    last_date: dt.date
    first_symbol: str
    last_symbol: str
    priority: int
    run_key: str


@dataclass
class OnboardingPlan:
    claimed: list[queue.QueueRow] = field(default_factory=list)
    new_keys: list[str] = field(default_factory=list)
    runs: list[PlannedRun] = field(default_factory=list)
    cursor: str | None = None

    @property
    def queue_ids(self) -> list[int]:
        return sorted(row.id for row in self.claimed)


def plan_onboarding(
    engine: Engine,
    existing_keys: Sequence[str],
    cursor: str | None,
    *,
    now: pd.Timestamp,
    first_partition: dt.date,
    limit: int = ONBOARDING_BATCH,
    reclaim: bool = True,
) -> OnboardingPlan:
    """Claim queued symbols and say which keys to add to the `symbol` partition and which runs to make.

    The new keys are appended to the dynamic partition together, so they form one block in its
    order and one partition range covers them: runs per batch, not per symbol. Each block gets
    two runs over disjoint dates: `latest` (the latest completed session, high priority) makes
    the symbols `active` with every beta in a few seconds, since its betas step settles them;
    `history` fills the sessions before it. One run over the whole window would make the user
    wait for ~190 sessions of betas and metrics, computed one date at a time. A claimed
    symbol already in the partition (registered by `symbol-pipeline run`, say) may sit elsewhere
    in the order; it gets a run of its own block.
    """
    last_id = int(cursor) if cursor else 0
    requeue_due_retries(engine, now, limit)
    claimed = queue.claim_batch(engine, limit, reclaim_after_id=last_id if reclaim else None)
    plan = OnboardingPlan(claimed=claimed, cursor=cursor)
    if not claimed:
        return plan
    symbols = list(dict.fromkeys(row.symbol for row in claimed))
    existing = set(existing_keys)
    plan.new_keys = [s for s in symbols if s not in existing]
    order = [*existing_keys, *plan.new_keys]
    first_date, last_date = onboarding_dates(now, first_partition)
    ids = plan.queue_ids
    windows = [("latest", last_date, last_date, LATEST_PRIORITY)]
    if first_date < last_date:
        windows.append(("history", first_date, sessions.previous_session(last_date), HISTORY_PRIORITY))
    for first, last in contiguous_blocks(symbols, order):
        for part, d1, d2, priority in windows:
            key = f"onboarding:{ids[0]}-{ids[-1]}:{first}..{last}:{part}"
            plan.runs.append(PlannedRun(part, d1, d2, first, last, priority, key))
    plan.cursor = str(max(last_id, ids[-1]))
    return plan


def fail_pending_without_prices(
    engine: Engine, failures: dict[str, str], policy: RecoveryPolicy = DEFAULT_RECOVERY
) -> list[str]:
    """Pending symbols whose fetch failed and that have no price at all turn `error`, with the
    reason and their next automatic retry (none once the policy's attempts are spent)."""
    if not failures:
        return []
    with engine.begin() as conn:
        pending = universe.pending_among(conn, failures)
        priced = universe.symbols_with_prices(conn, pending)
        failed = [s for s in pending if s not in priced]
        lifecycle.record_failures(conn, {s: failures[s] for s in failed}, attempts=policy.retry_attempts,
                                  first_delay=policy.retry_delay)
    return failed


def settle_pending(
    engine: Engine, symbols: Sequence[str], policy: RecoveryPolicy = DEFAULT_RECOVERY
) -> dict[str, str]:
    """After betas were computed, each pending symbol settles.

    With prices it is `active`, with a beta or not: a new listing with too little history has
    `insufficient_data` rows and gains betas as its history accrues; one whose prices stopped
    long ago is `delisted` (lifecycle.update_listing). Without any price it is `error`, with a
    retry scheduled. A symbol with prices has its failure count cleared.
    """
    settled: dict[str, str] = {}
    with engine.begin() as conn:
        pending = universe.pending_among(conn, symbols)
        if not pending:
            return settled
        priced = universe.symbols_with_prices(conn, pending)
        for symbol in pending:
            if symbol in priced:
                universe.finish_onboarding(conn, symbol, universe.STATUS_ACTIVE, None)
                settled[symbol] = universe.STATUS_ACTIVE
        lifecycle.mark_recovered(conn, sorted(priced))
        delisted, _ = lifecycle.update_listing(conn, sorted(priced), after_sessions=policy.delisted_after_sessions)
        settled.update(dict.fromkeys(delisted, universe.STATUS_DELISTED))
        unpriced = {s: "no prices from the source" for s in pending if s not in priced}
        lifecycle.record_failures(conn, unpriced, attempts=policy.retry_attempts, first_delay=policy.retry_delay)
        settled.update(dict.fromkeys(unpriced, universe.STATUS_ERROR))
    return settled
