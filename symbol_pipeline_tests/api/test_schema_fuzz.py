"""Property-based tests generated from the OpenAPI schema (schemathesis): every operation, no 5xx.

Schemathesis generates valid and invalid bodies, query and path parameters for every operation the
app declares, from the same schema `/docs` shows, so a new endpoint is covered without a line
here. The app runs in-process (ASGI) over a throwaway PostgreSQL database: an admin caller with a
real portfolio and symbols, so that admin and delete endpoints act on data made for this test, and
the run submission is stubbed (no Dagster instance, no daemon).

Three tests: every operation on its own; the import bodies (JSON rows from the schema, CSV texts
from a strategy of cells the rules must refuse or accept); stateful sequences following the
schema's links (create a portfolio, import into it, patch and close what was imported, delete it).
Every run is derandomized with a fixed example budget: the same cases on every machine, so CI is
not flaky, and about 100 s on 2 cores in all.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections import Counter

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.api.routes import admin as admin_routes
from symbol_pipeline.runs.requests import DailyBatchRequest
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.portfolio_schema import portfolios
from symbol_pipeline.storage.schema import symbol_onboarding_queue, symbol_universe
from symbol_pipeline_tests.portfolio_data import seed_etf_history, seed_symbols

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 25
SEEDED_SYMBOLS = ["AAA", "BAD", "SPY", "TLT", "VTV", "VUG", "MTUM", "QUAL", "IWM", "USMV"]
IMPORT_EXAMPLES = 100  # per generation mode, JSON and CSV bodies mixed
STATEFUL_SCENARIOS = 80
STATEFUL_STEPS = 12
IMPORT_PATH = "/api/v1/portfolios/{portfolio_id}/positions/import"

# A CSV body is text on the wire, as text/plain is (csv_bodies below makes the bytes).
schemathesis.serializer.alias("text/csv", "text/plain")


def _settings(examples: int, **extra) -> hypothesis.settings:
    """A fixed budget and derandomized generation: the same cases on every run."""
    return hypothesis.settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                               suppress_health_check=list(hypothesis.HealthCheck),
                               phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink], **extra)


@pytest.fixture
def fuzz_env(pg_engine, pg_url, tmp_path, monkeypatch):
    seed_symbols(pg_engine, {"AAA": {"market_beta": 1.1, "ir_beta": 0.5}}, {"AAA": 10.0})
    seed_symbols(pg_engine, {"BAD": {}}, {}, status="error")
    seed_etf_history(pg_engine)
    root = svc.create_user(pg_engine, "root", is_admin=True)
    key = svc.issue_api_key(pg_engine, "root")
    portfolio = svc.create_portfolio(pg_engine, root.id, "fuzz", 100_000)
    svc.add_position(pg_engine, portfolio["id"], "AAA", 100)
    # The run submission never reaches Dagster: 202 as the daemon's request would be.
    monkeypatch.setattr(admin_routes, "request_daily_symbol_batch",
                        lambda engine, data_dir, day, by: DailyBatchRequest(day or dt.date(2024, 6, 28), 1))
    monkeypatch.setattr(admin_routes, "daily_batch_status", lambda data_dir: {"status": "none"})
    app = create_app(ApiSettings(database_url=pg_url, data_dir=tmp_path))
    yield app, {"Authorization": f"Bearer {key}"}, portfolio["id"]
    app.state.engine.dispose()


def _fuzz(operation, auth: dict[str, str], portfolio_id: str, mode, examples: int) -> tuple[int, str | None]:
    """Run up to `examples` generated cases of one operation: (cases run, the first 5xx or None)."""
    ran = 0
    fixed = {"portfolio_id": portfolio_id} if "{portfolio_id}" in operation.path else None
    strategy = operation.as_strategy(generation_mode=mode)
    if fixed:  # half the cases address the real portfolio, to get past the 404
        strategy = strategy | operation.as_strategy(generation_mode=mode, path_parameters=fixed)

    @_settings(examples)
    @hypothesis.given(case=strategy)
    def run(case):
        nonlocal ran
        ran += 1
        case.call_and_validate(headers=auth, checks=[not_a_server_error])

    try:
        run()
    except Exception as exc:  # the failure, shrunk, with the curl command that reproduces it
        return ran, f"{operation.label}: {str(exc).strip()[-600:]}"
    return ran, None


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_operation_answers_5xx(fuzz_env, mode):
    app, auth, portfolio_id = fuzz_env
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    started, counts, failures = time.monotonic(), {}, []
    for result in schema.get_all_operations():
        operation = result.ok()
        counts[operation.label], failure = _fuzz(operation, auth, portfolio_id, mode, EXAMPLES_PER_OPERATION)
        failures += [failure] if failure else []
    print(f"schemathesis {mode.value}: {sum(counts.values())} cases over {len(counts)} operations "
          f"in {time.monotonic() - started:.1f}s")
    assert failures == []
    assert len(counts) >= 10 and all(counts.values())


# CSV bodies, for the import: the schema can only say "a string". Rows are mostly typed (a symbol,
# a quantity, then maybe a price, a date and a class), each cell valid or one the rules must refuse,
# and sometimes free cells of anything hypothesis invents.
_SYMBOLS = st.sampled_from(["AAA", "brk-b", "^IRX", "CL=F", "NEWA", " AAA ", "=CMD", "^", "....", "ſpy", "ß",
                            "A\x1fA", "AAA\n", ""])
_NUMBERS = st.one_of(st.sampled_from(["1", "-2.5", "100", " 7 ", "1e3", "1e300", "9" * 400, "١٢٣", "nan", "inf",
                                      "true", "0", "1_000", ""]), st.integers().map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr))
_DATES = st.one_of(st.sampled_from(["2024-06-03", "0001-01-01", "1900-01-01", "1995-01-03", "9999-12-31",
                                    "20240603", "0", ""]), st.dates().map(str))
_CLASSES = st.sampled_from(["equity", "ETF", "fund_1", "a b", "x" * 40, "é", ""])
_HEADERS = st.sampled_from(["symbol,quantity", "symbol,quantity,entry_price,entry_date,investment_class",
                            "quantity,symbol", "symbol", "symbol,quantity,extra", ""])


_VALID = {"symbol": st.sampled_from(["AAA", "brk-b", "^IRX", "CL=F", "NEWA", " AAA "]),
          "quantity": st.one_of(st.sampled_from(["1", "-2.5", " 7 ", "1e3"]), st.integers(-10**6, 10**6)
                                .filter(bool).map(str)),
          "entry_price": st.sampled_from(["", "190.5", "1"]),
          "entry_date": st.one_of(st.just(""), st.dates(dt.date(1995, 1, 3), dt.date(2024, 6, 28)).map(str)),
          "investment_class": st.sampled_from(["", "equity", "ETF", "fund_1"])}


@st.composite
def _clean_csv(draw) -> list[list[str]]:
    """A CSV the rules accept: the full header or the two required columns, in either order."""
    columns = draw(st.sampled_from([["symbol", "quantity"], ["quantity", "symbol"], list(_VALID)]))
    rows = draw(st.lists(st.fixed_dictionaries({c: _VALID[c] for c in columns}), min_size=1, max_size=4))
    return [columns, *[[row[c] for c in columns] for row in rows]]


@st.composite
def _dirty_csv(draw) -> list[list[str]]:
    """A CSV with odd headers, cells the rules must refuse and free text."""
    header = draw(_HEADERS)
    typed = st.tuples(_SYMBOLS, _NUMBERS, _NUMBERS, _DATES, _CLASSES).flatmap(
        lambda cells: st.integers(2, 5).map(lambda n: list(cells[:n])))
    free = st.lists(st.one_of(_SYMBOLS, _NUMBERS, _DATES, st.text(max_size=24)), min_size=1, max_size=6)
    return [header.split(",")] * bool(header) + draw(st.lists(st.one_of(typed, typed, free), max_size=5))


def _csv_text(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


# Half of the bodies clean (so that imports succeed and sequences go on), half dirty.
csv_bodies = st.one_of(_clean_csv(), _dirty_csv()).map(_csv_text)


# Generated text/csv bodies come from csv_bodies, in every test of this module; sent as text.
schemathesis.openapi.media_type("text/csv", csv_bodies)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_import_bodies_never_answer_5xx(fuzz_env, mode):
    """Generated JSON rows (from the schema's description of a row) and CSV texts, into the real
    portfolio: each answer a 2xx or a 4xx."""
    app, auth, portfolio_id = fuzz_env
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[IMPORT_PATH]["POST"]
    fixed = {"portfolio_id": portfolio_id}
    statuses: Counter = Counter()
    # One stream of cases, JSON and CSV bodies mixed (as_strategy's media_type does not restrict it).
    @_settings(IMPORT_EXAMPLES)
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    def run(case):
        response = case.call(headers=auth)
        statuses[(case.media_type, response.status_code // 100)] += 1
        case.validate_response(response, checks=[not_a_server_error], headers=auth)

    run()
    print(f"import bodies ({mode.value}): {dict(statuses)}")
    assert not any(kind_class[1] == 5 for kind_class in statuses)
    assert statuses[("text/csv", 4)] and statuses[("application/json", 4)]
    if mode is GenerationMode.POSITIVE:  # some bodies were imported, not all refused
        assert statuses[("text/csv", 2)] and statuses[("application/json", 2)]


def _forget_scenario(engine, owner_id: int) -> None:
    """What one stateful scenario wrote, gone: the caller's portfolios (with their positions and
    history) and the symbols it queued. Every scenario then starts from the same database, so that a
    replayed scenario draws the same steps (Hypothesis requires it) and the onboarding cap never trips."""
    with engine.begin() as conn:
        conn.execute(portfolios.delete().where(portfolios.c.owner_id == owner_id))
        conn.execute(symbol_onboarding_queue.delete())
        conn.execute(symbol_universe.delete().where(symbol_universe.c.symbol.not_in(SEEDED_SYMBOLS)))


def test_stateful_sequences_never_answer_5xx(fuzz_env):
    """Sequences of operations following the schema's links, from a portfolio created in the sequence:
    import into it, change and close what was imported, read its analytics, delete it. No sequence may
    leave the portfolio in a state where a later call fails."""
    app, _, _ = fuzz_env
    engine = app.state.engine
    # A caller of its own, without portfolios: each scenario starts from nothing it did not create.
    caller = svc.create_user(engine, "sequences")
    auth = {"Authorization": f"Bearer {svc.issue_api_key(engine, 'sequences')}"}
    # The portfolio's life and its reads; the other operations are the first test's. Only the links
    # the schema declares (no inferred ones): every step acts on what an earlier step created.
    schema = (schemathesis.openapi.from_asgi("/openapi.json", app)
              .exclude(path_regex="^/api/v1/(admin|symbols)/|/stress-test$|/risk$")
              .exclude(path="/api/v1/portfolios", method="GET").exclude(path="/api/v1/positions", method="POST"))
    schema.config.phases.stateful.inference.algorithms = []
    # Valid inputs only, the caller's key untouched: a sequence goes deep only when its steps succeed
    # (the invalid inputs of every operation are the first test's).
    schema.config.generation.update(modes=[GenerationMode.POSITIVE], with_security_parameters=False)
    succeeded: Counter = Counter()

    class Sequences(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": auth}

        def after_call(self, response, case):
            if response.status_code < 300:
                succeeded[f"{case.operation.method.upper()} {case.operation.path}"] += 1

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=[not_a_server_error], transport_kwargs=kwargs or None)

        def teardown(self):
            _forget_scenario(engine, caller.id)
            super().teardown()

    started = time.monotonic()
    Sequences.run(settings=_settings(STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS))
    print(f"stateful: {sum(succeeded.values())} successful calls in {time.monotonic() - started:.1f}s: "
          f"{dict(succeeded)}")
    for operation in ("POST /api/v1/portfolios", f"POST {IMPORT_PATH}", "PATCH /api/v1/positions/{position_id}",
                      "POST /api/v1/positions/{position_id}/close", "DELETE /api/v1/portfolios/{portfolio_id}"):
        assert succeeded[operation], (operation, dict(succeeded))  # the sequences reached every step
