"""Racing requests against a real `symbol-pipeline serve`: the history left is that of a serial order.

Each race is run ROUNDS times with clients on their own threads and connections, released
together by a barrier (issue 18 item 3, the probe's cases):

* a quantity change racing a close of the same position: exactly one wins (the other is a 409,
  or the 422 the serial order gives), and no quantity row lies on or after the exit date;
* 20 quantity changes of one position: every one recorded, each answer showing its own quantity,
  and `positions.quantity` equal to the last row of the history;
* two deletes of one portfolio: one 204, one 404, one deletion in the change log;
* one new symbol posted 10 times (10 portfolios): one queue row, every answer naming it pending;
* 20 imports of 9 new symbols each by one user with a daily cap of 100: 11 accepted, 9 refused
  (429), 99 queue rows.

On PostgreSQL every case; on SQLite (whose write lock serialises every change) the same cases
for fewer rounds, where no answer may be a 5xx (a 503 while busy would be allowed).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from symbol_pipeline.services import portfolio as service
from symbol_pipeline.storage.portfolio_schema import portfolio_changes, position_quantities, positions
from symbol_pipeline.storage.schema import symbol_onboarding_queue, symbol_universe
from symbol_pipeline_tests.serve_process import SERVED_ENV, Racers

pytestmark = [pytest.mark.slow]

CAP = 100
TODAY = dt.date.today()
_names = (f"{a}{b}{c}" for a, b, c in itertools.product("BCDFGHJKLMNPQRSTVWXZ", repeat=3))


def new_symbol() -> str:
    """A ticker no test has used yet in this process."""
    return "RC" + next(_names)


@dataclass
class Served:
    base: str
    engine: sa.Engine
    racers: Racers
    backend: str

    def user(self) -> tuple[service.User, dict[str, str]]:
        name = f"user_{next(_names)}"
        user = service.create_user(self.engine, name)
        return user, {"Authorization": f"Bearer {service.issue_api_key(self.engine, name)}"}

    def portfolio(self, owner: service.User) -> str:
        return service.create_portfolio(self.engine, owner.id, "raced", 1_000_000)["id"]


@pytest.fixture(scope="module", params=[pytest.param("pg", marks=pytest.mark.postgres), "sqlite"])
def served(request):
    """The session's server of each backend (conftest; AAA priced, the daily cap CAP) and 20 racing clients."""
    api = request.getfixturevalue(f"{request.param}_api_server")
    assert SERVED_ENV["SYMBOL_PIPELINE_ONBOARDING_DAILY_CAP"] == str(CAP)
    racers = Racers(api.base, 20)
    try:
        yield Served(api.base, api.engine, racers, api.backend)
    finally:
        racers.close()


def rounds(served: Served) -> int:
    """At least 20 rounds per race where rows are locked; SQLite runs every change alone anyway."""
    return 20 if served.backend == "postgresql" else 5


def no_5xx(responses: list[httpx.Response]) -> list[int]:
    codes = [r.status_code for r in responses]
    assert all(c < 500 for c in codes), [(r.status_code, r.text[:300]) for r in responses if r.status_code >= 500]
    return codes


def test_a_quantity_change_racing_a_close_leaves_one_serial_history(served):
    owner, auth = served.user()
    pid = served.portfolio(owner)
    entry, change, exit_ = TODAY - dt.timedelta(days=10), TODAY - dt.timedelta(days=3), TODAY - dt.timedelta(days=5)
    for _ in range(rounds(served)):
        pos = service.add_position(served.engine, pid, "AAA", 100, entry_date=entry)["position"]["id"]
        patch, close = served.racers.race([
            ("PATCH", f"/api/v1/positions/{pos}",
             {"headers": auth, "json": {"quantity": 150, "effective_date": change.isoformat()}}),
            ("POST", f"/api/v1/positions/{pos}/close", {"headers": auth, "json": {"exit_date": exit_.isoformat()}}),
        ])
        no_5xx([patch, close])
        history = service.quantity_history(served.engine, pos)
        if patch.status_code == 200:  # the change first: the close before it is refused
            assert close.status_code == 422 and "before the quantity change" in close.json()["detail"], close.text
            assert history["exit_date"] is None and [h["quantity"] for h in history["quantity_history"]] == [100, 150]
        else:  # the close first: the position is closed when the change comes
            assert (patch.status_code, close.status_code) == (409, 200), (patch.text, close.text)
            assert history["exit_date"] == exit_.isoformat() and len(history["quantity_history"]) == 1
        if history["exit_date"]:
            assert all(h["effective_date"] < history["exit_date"] for h in history["quantity_history"])


def test_parallel_quantity_changes_of_one_position_keep_the_quantity_and_its_history_equal(served):
    owner, auth = served.user()
    pid = served.portfolio(owner)
    day = (TODAY - dt.timedelta(days=1)).isoformat()
    for _ in range(rounds(served)):
        pos = service.add_position(served.engine, pid, "AAA", 1, entry_date=TODAY - dt.timedelta(days=5))
        pos_id = pos["position"]["id"]
        answers = served.racers.race([
            ("PATCH", f"/api/v1/positions/{pos_id}", {"headers": auth, "json": {"quantity": q, "effective_date": day}})
            for q in range(2, 22)])
        assert set(no_5xx(answers)) == {200}
        # Serially, each change is the latest row when it answers: it shows its own quantity.
        assert [a.json()["quantity"] for a in answers] == list(range(2, 22))
        with served.engine.connect() as conn:
            rows = conn.execute(sa.select(position_quantities.c.quantity).where(
                position_quantities.c.position_id == pos_id).order_by(
                position_quantities.c.effective_date, position_quantities.c.id)).scalars().all()
            current = conn.execute(sa.select(positions.c.quantity).where(positions.c.id == pos_id)).scalar_one()
        assert sorted(rows[1:]) == list(range(2, 22)) and current == rows[-1]


def test_two_deletes_of_one_portfolio_delete_it_once(served):
    owner, auth = served.user()
    for _ in range(rounds(served)):
        pid = served.portfolio(owner)
        service.add_position(served.engine, pid, "AAA", 5)
        answers = served.racers.race([("DELETE", f"/api/v1/portfolios/{pid}", {"headers": auth})] * 2)
        assert sorted(no_5xx(answers)) == [204, 404]
        with served.engine.connect() as conn:
            deletions = conn.execute(sa.select(sa.func.count()).where(
                portfolio_changes.c.portfolio_id == pid, portfolio_changes.c.kind == "portfolio_deleted")).scalar_one()
        assert deletions == 1


def test_one_new_symbol_posted_ten_times_is_queued_once(served):
    owner, auth = served.user()
    portfolios = [served.portfolio(owner) for _ in range(10)]
    for _ in range(rounds(served)):
        symbol = new_symbol()
        answers = served.racers.race([
            ("POST", "/api/v1/positions", {"headers": auth, "json": {"portfolio_id": pid, "symbol": symbol, "quantity": 10}})
            for pid in portfolios])
        assert set(no_5xx(answers)) == {201}, [a.text for a in answers]
        assert all(a.json()["pending_symbols"] == [symbol] for a in answers), [a.json() for a in answers]
        with served.engine.connect() as conn:
            queued = conn.execute(sa.select(sa.func.count()).where(
                symbol_onboarding_queue.c.symbol == symbol)).scalar_one()
        assert queued == 1


def test_the_daily_onboarding_cap_holds_under_parallel_imports(served):
    for _ in range(rounds(served)):
        owner, auth = served.user()
        portfolios = [served.portfolio(owner) for _ in range(20)]
        bodies = [[{"symbol": new_symbol(), "quantity": 1} for _ in range(9)] for _ in portfolios]
        answers = served.racers.race([
            ("POST", f"/api/v1/portfolios/{pid}/positions/import", {"headers": auth, "json": body})
            for pid, body in zip(portfolios, bodies)])
        codes = no_5xx(answers)
        assert sorted(codes) == [201] * (CAP // 9) + [429] * (20 - CAP // 9), [a.text[:200] for a in answers]
        refused = [row["symbol"] for body, code in zip(bodies, codes) if code == 429 for row in body]
        with served.engine.connect() as conn:
            queued = conn.execute(sa.select(sa.func.count()).where(
                symbol_onboarding_queue.c.requested_by == f"api:{owner.name}")).scalar_one()
            held = conn.execute(sa.select(sa.func.count()).where(positions.c.portfolio_id.in_(portfolios))).scalar_one()
            leaked = conn.execute(sa.select(sa.func.count()).where(symbol_universe.c.symbol.in_(refused))).scalar_one()
        assert queued == held == 9 * (CAP // 9) and leaked == 0
