"""Property-based tests generated from the OpenAPI schema (schemathesis): every operation, no 5xx.

Schemathesis generates valid and invalid bodies, query and path parameters for every operation the
app declares, from the same schema `/docs` shows, so a new endpoint is covered without a line
here. The app runs in-process (ASGI) over a throwaway PostgreSQL database: an admin caller with a
real portfolio and symbols, so that admin and delete endpoints act on data made for this test, and
the run submission is stubbed (no Dagster instance, no daemon). About 40 s on 2 cores.
"""

from __future__ import annotations

import time

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from symbol_pipeline.api.app import ApiSettings, create_app
from symbol_pipeline.api.routes import admin as admin_routes
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline_tests.portfolio_data import seed_etf_history, seed_symbols

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 25


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
                        lambda engine, data_dir, day, by: (202, {"status": "requested", "request_id": 1}))
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

    @hypothesis.settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck),
                         phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink])
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
