"""Jobs over the symbol layer."""

from __future__ import annotations

import dagster as dg

from symbol_pipeline.runs.submit import FACTOR_RETURNS_JOB, SYMBOL_LAYER_JOB

# The regressor ETFs' returns come first, on their own date partitions, then everything per symbol.
factor_returns_job = dg.define_asset_job(
    FACTOR_RETURNS_JOB,
    selection=dg.AssetSelection.assets("factor_returns"),
)

symbol_layer_job = dg.define_asset_job(
    SYMBOL_LAYER_JOB,
    selection=dg.AssetSelection.groups("symbols") - dg.AssetSelection.assets("factor_returns"),
    description="Prices, every factor beta and the daily metrics for a range of dates × symbols.",
    # The steps run one after the other over the same data; a process per step would only add
    # the import time of pandas, scikit-learn and Dagster to each.
    executor_def=dg.in_process_executor,
    # DEBUG would log one line per partition and asset: 60,000 lines for 10,000 symbols.
    config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
)
