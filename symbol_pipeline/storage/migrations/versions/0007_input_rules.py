"""Rows written before the input rules of issue 18: dates before the exchange calendar's first
session, and queued symbols the rules refuse

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 12:00:00

Before issue 18 an import could store an entry date in year 1, and the API any date from 1900 on;
reading such a row failed (pandas cannot hold a year-1 timestamp) and no session exists before
1995-01-03 to serve it. Every date before FIRST is moved to FIRST, keeping what each row means on
every date the calendar can serve: of a position's quantity rows (a portfolio's equity rows)
dated before FIRST, only the one in force on FIRST is kept, at FIRST, unless a row dated FIRST
exists already (then none is needed); entry and exit dates before FIRST become FIRST (a position
closed before FIRST is then never held, as on every date that can be asked for).

Symbols the rules now refuse (`=CMD`, `^`, `....`, lower-case or non-ASCII text) that wait in the
onboarding queue or failed there are rejected like an operator's `symbols reject`, so that no
onboarding run fetches them. Positions holding them are kept: they read as symbols without prices.
The rule is written out here, not imported, so that this migration keeps its meaning when the
rules change. A folded symbol (`ſpy` stored as SPY) cannot be told from the real one: it stays.

No downgrade: the rows moved cannot be told from the others afterwards.
"""

import datetime as dt
import re

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

FIRST = dt.date(1995, 1, 3)
_SYMBOL = re.compile(r"[A-Z0-9^][A-Z0-9.\-^=]{0,19}", re.ASCII)
REASON = "rejected: not a valid symbol (ASCII letters, digits and . - ^ =, starting with a letter, a digit or ^)"


def _valid(symbol: str) -> bool:
    return bool(_SYMBOL.fullmatch(symbol)) and any(ch.isalnum() for ch in symbol)


def _table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c, sa.Date if c.endswith("_date") else None) for c in columns))


def _clamp_history(conn, name: str, owner: str) -> set:
    """Keep per owner the row in force on FIRST (the latest before it), moved to FIRST; drop the other
    rows before FIRST. Returns the owners touched."""
    t = _table(name, "id", owner, "effective_date")
    rows = conn.execute(sa.select(t.c.id, t.c[owner], t.c.effective_date).where(t.c.effective_date <= FIRST)
                        .order_by(t.c[owner], t.c.effective_date, t.c.id)).all()
    by_owner: dict = {}
    for row in rows:
        by_owner.setdefault(row[1], []).append(row)
    drop, move = [], []
    for owned in by_owner.values():
        before = [r for r in owned if r.effective_date < FIRST]
        if not before:
            continue
        on_first = len(before) < len(owned)
        keep = None if on_first else before[-1]
        drop += [r.id for r in before if r is not keep]
        if keep is not None:
            move.append(keep.id)
    for start in range(0, len(drop), 500):
        conn.execute(t.delete().where(t.c.id.in_(drop[start:start + 500])))
    for start in range(0, len(move), 500):
        conn.execute(t.update().where(t.c.id.in_(move[start:start + 500])).values(effective_date=FIRST))
    return {r[1] for r in rows if r.effective_date < FIRST}


def upgrade() -> None:
    conn = op.get_bind()
    touched = _clamp_history(conn, "portfolio_equity", "portfolio_id")
    positions = _table("positions", "id", "portfolio_id", "entry_date", "exit_date")
    moved_positions = _clamp_history(conn, "position_quantities", "position_id")
    early = positions.c.entry_date < FIRST
    closed_early = positions.c.exit_date < FIRST
    touched |= {r[0] for r in conn.execute(sa.select(positions.c.portfolio_id).where(early | closed_early))}
    if moved_positions:
        ids = list(moved_positions)
        for start in range(0, len(ids), 500):
            touched |= {r[0] for r in conn.execute(sa.select(positions.c.portfolio_id)
                                                   .where(positions.c.id.in_(ids[start:start + 500])))}
    conn.execute(positions.update().where(early).values(entry_date=FIRST))
    conn.execute(positions.update().where(closed_early).values(exit_date=FIRST))
    if touched:  # documents computed from the old rows; the next read recomputes them
        cache = sa.table("portfolio_analytics_cache", sa.column("portfolio_id"))
        ids = list(touched)
        for start in range(0, len(ids), 500):
            conn.execute(cache.delete().where(cache.c.portfolio_id.in_(ids[start:start + 500])))

    universe = sa.table("symbol_universe", sa.column("symbol"), sa.column("status"), sa.column("is_regressor"),
                        sa.column("error_message"), sa.column("next_retry_at"))
    queue = sa.table("symbol_onboarding_queue", sa.column("symbol"), sa.column("status"),
                     sa.column("error_message"), sa.column("completed_at"))
    waiting = conn.execute(sa.select(universe.c.symbol).where(universe.c.status.in_(["pending", "error"]),
                                                               universe.c.is_regressor.is_(sa.false()))).scalars()
    queued = conn.execute(sa.select(queue.c.symbol).where(queue.c.status.in_(["pending", "processing"]))).scalars()
    refused = sorted({s for s in [*waiting, *queued] if not _valid(s)})
    for start in range(0, len(refused), 500):
        chunk = refused[start:start + 500]
        conn.execute(universe.update().where(universe.c.symbol.in_(chunk), universe.c.status.in_(["pending", "error"]))
                     .values(status="error", error_message=REASON, next_retry_at=None))
        conn.execute(queue.update().where(queue.c.symbol.in_(chunk), queue.c.status.in_(["pending", "processing"]))
                     .values(status="failed", error_message=REASON, completed_at=sa.func.now()))


def downgrade() -> None:
    pass
