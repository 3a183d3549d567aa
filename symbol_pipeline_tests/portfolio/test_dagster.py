"""The portfolio assets through dg.materialize, and the position-change sensor through its context."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from symbol_pipeline.defs.portfolio_assets import (
    PORTFOLIO_ASSETS,
    portfolio_exposures_job,
    position_change_sensor,
    run_config_for,
)
from symbol_pipeline.defs.resources import DatabaseResource
from symbol_pipeline.services import portfolios as svc
from symbol_pipeline.storage.portfolio_schema import portfolio_exposure_summary

from .conftest import seed_etf_history, seed_symbols


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_sensor_one_run_per_burst_and_cursor(engine):
    user = svc.create_user(engine, "erin")
    a = svc.create_portfolio(engine, user.id, "a", 100)
    b = svc.create_portfolio(engine, user.id, "b", 100)
    for pf in (a, b, a):
        svc.add_position(engine, pf["id"], "AAA", 1, entry_price=1)
    db = DatabaseResource(url=_url(engine))
    with dg.DagsterInstance.ephemeral() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={"database": db})
        result = position_change_sensor(ctx)
        assert isinstance(result, dg.RunRequest)
        assert result.run_key == "portfolio-changes-1-5"
        assert result.run_config == run_config_for(sorted([a["id"], b["id"]]))
        assert ctx.cursor == "5"
        assert isinstance(position_change_sensor(ctx), dg.SkipReason)
        svc.add_position(engine, b["id"], "AAA", 2, entry_price=1)
        nxt = position_change_sensor(ctx)
        assert nxt.run_key == "portfolio-changes-6-6" and ctx.cursor == "6"
        assert nxt.run_config["ops"]["portfolio_factor_exposures"]["config"]["portfolio_ids"] == [b["id"]]


def test_assets_materialise_changed_portfolios_and_record_errors(engine):
    seed_symbols(engine, {"AAA": {"market_beta": 1.0, "ir_beta": 0.5}}, {"AAA": 10.0})
    seed_etf_history(engine)
    user = svc.create_user(engine, "finn")
    good = svc.create_portfolio(engine, user.id, "good", 1000)
    bad = svc.create_portfolio(engine, user.id, "bad", 1000)
    for pf in (good, bad):
        svc.add_position(engine, pf["id"], "AAA", 10)
    svc.set_equity(engine, bad["id"], 0)
    result = dg.materialize(
        PORTFOLIO_ASSETS,
        resources={"database": DatabaseResource(url=_url(engine))},
        run_config=run_config_for([good["id"], bad["id"]]),
    )
    assert result.success
    meta = result.asset_materializations_for_node("portfolio_factor_exposures")[0].metadata
    assert meta["computed"].value == 1 and meta["errors"].value == 1
    stress_meta = result.asset_materializations_for_node("portfolio_stress_tests")[0].metadata
    assert stress_meta["portfolios"].value == 1 and stress_meta["covariance_sessions"].value == 252
    with engine.connect() as conn:
        errors = dict(conn.execute(sa.select(portfolio_exposure_summary.c.portfolio_id,
                                             portfolio_exposure_summary.c.error)).all())
    assert errors[good["id"]] is None and "positive equity" in errors[bad["id"]]
    assert svc.portfolio_factor_exposures_json(engine, good["id"])[1] is True


def test_job_is_defined_over_both_assets():
    defs = dg.Definitions(assets=PORTFOLIO_ASSETS, jobs=[portfolio_exposures_job], sensors=[position_change_sensor],
                          resources={"database": DatabaseResource(url="sqlite://")})
    job = defs.resolve_job_def("portfolio_exposures_job")
    assert {n.name for n in job.nodes} == {"portfolio_factor_exposures", "portfolio_stress_tests"}
