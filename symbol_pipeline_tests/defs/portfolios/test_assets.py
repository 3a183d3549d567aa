"""The portfolio assets through dg.materialize, and their job."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from symbol_pipeline.defs.portfolios.assets import PORTFOLIO_ASSETS
from symbol_pipeline.defs.portfolios.jobs import portfolio_exposures_job
from symbol_pipeline.defs.portfolios.sensors import position_change_sensor
from symbol_pipeline.defs.resources import DatabaseResource, StressScenariosResource
from symbol_pipeline.runs.submit import portfolio_run_config as run_config_for
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.portfolio_schema import portfolio_exposure_summary
from symbol_pipeline_tests.portfolio_data import seed_etf_history, seed_symbols


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


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
        resources={"database": DatabaseResource(url=_url(engine)), "stress_scenarios": StressScenariosResource()},
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
                          resources={"database": DatabaseResource(url="sqlite://"),
                                     "stress_scenarios": StressScenariosResource()})
    job = defs.resolve_job_def("portfolio_exposures_job")
    assert {n.name for n in job.nodes} == {"portfolio_factor_exposures", "portfolio_stress_tests"}


def test_stress_asset_reads_the_extra_scenarios_file(engine, tmp_path):
    seed_symbols(engine, {"AAA": {"market_beta": 1.0, "ir_beta": 0.5}}, {"AAA": 10.0})
    seed_etf_history(engine)
    user = svc.create_user(engine, "sam")
    pf = svc.create_portfolio(engine, user.id, "one", 1000)
    svc.add_position(engine, pf["id"], "AAA", 10)
    extra = tmp_path / "extra.json"
    extra.write_text('{"version": 1, "scenarios": [{"name": "house_view", "category": "custom", '
                     '"description": "SPY -3%", "shocks": {"SPY": -0.03}}]}')
    counts = {}
    for name, resource in (("builtin", StressScenariosResource()), ("extra", StressScenariosResource(extra_file=str(extra)))):
        result = dg.materialize(
            PORTFOLIO_ASSETS,
            resources={"database": DatabaseResource(url=_url(engine)), "stress_scenarios": resource},
            run_config=run_config_for([pf["id"]]),
        )
        counts[name] = result.asset_materializations_for_node("portfolio_stress_tests")[0].metadata["scenarios"].value
    assert counts["extra"] == counts["builtin"] + 1
