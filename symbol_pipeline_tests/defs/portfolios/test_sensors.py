"""The position-change sensor through its context: one run per burst of changes, and its cursor."""

from __future__ import annotations

import dagster as dg

from symbol_pipeline.defs.portfolios.sensors import position_change_sensor
from symbol_pipeline.defs.resources import DatabaseResource
from symbol_pipeline.runs.submit import portfolio_run_config as run_config_for
from symbol_pipeline.services import portfolio as svc


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
        assert result.tags["symbol_pipeline/run_kind"] == "portfolio"  # one at a time in production
        assert ctx.cursor == "5"
        assert isinstance(position_change_sensor(ctx), dg.SkipReason)
        svc.add_position(engine, b["id"], "AAA", 2, entry_price=1)
        nxt = position_change_sensor(ctx)
        assert nxt.run_key == "portfolio-changes-6-6" and ctx.cursor == "6"
        assert nxt.run_config["ops"]["portfolio_factor_exposures"]["config"]["portfolio_ids"] == [b["id"]]
