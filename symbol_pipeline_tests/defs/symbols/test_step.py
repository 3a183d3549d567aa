"""The symbol-layer step's pieces over a named scope: which symbols each piece gets, in which order.

The pieces themselves run against a real database in test_assets.py (dg.materialize); here they
are replaced, so that only the step's routing is under test."""

from __future__ import annotations

import types

import pytest

from symbol_pipeline.defs.symbols import step
from symbol_pipeline.services import onboarding

CONTEXT = types.SimpleNamespace(log=types.SimpleNamespace(info=lambda message: None))


@pytest.fixture
def calls(monkeypatch) -> list[tuple]:
    made: list[tuple] = []
    monkeypatch.setattr(step, "prices", lambda context, run, source: made.append(("prices", run.fetched))
                        or (["price check"], {"BAD"}))

    def betas(context, run, symbols, beta_assets):
        made.append(("betas", list(symbols), list(beta_assets)))
        yield "beta check"

    monkeypatch.setattr(step, "betas", betas)
    monkeypatch.setattr(step, "metrics", lambda context, run, symbols: made.append(("metrics", list(symbols))))
    monkeypatch.setattr(step.symbol_layer, "ensure_regressor_prices",
                        lambda engine, source, symbols, dates, progress: made.append(("regressors", list(symbols))))
    return made


def _scope() -> step.StepScope:
    return step.StepScope(engine=None, dates=[], regress=["AAA", "BAD"], fetch_only=["OLD"], skipped=["ERR", "OLD"],
                          partitions=None, recovery=onboarding.DEFAULT_RECOVERY)


def test_the_scope_names_what_is_fetched():
    assert _scope().fetched == ["AAA", "BAD", "OLD"]


def test_every_asset_prices_then_betas_then_metrics(calls):
    selected = {step.PRICES, *step.BETA_ASSETS, step.METRICS}
    events = list(step.symbol_layer_step(CONTEXT, _scope(), source=None, selected=selected))
    assert events == ["price check", "beta check"]
    # A symbol whose onboarding failed in the prices step gets no betas; delisted ones get their record.
    assert calls == [("prices", ["AAA", "BAD", "OLD"]), ("betas", ["AAA", "OLD"], list(step.BETA_ASSETS)),
                     ("metrics", ["AAA", "OLD"])]


def test_a_subset_without_prices_loads_the_regressors_first(calls):
    events = list(step.symbol_layer_step(CONTEXT, _scope(), source=None, selected={"ir_beta", step.METRICS}))
    assert events == ["beta check"]
    assert calls == [("regressors", ["AAA", "BAD"]), ("betas", ["AAA", "BAD", "OLD"], ["ir_beta"]),
                     ("metrics", ["AAA", "BAD", "OLD"])]
