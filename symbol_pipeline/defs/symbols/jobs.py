"""Jobs over the symbol layer, and the run request that covers a whole universe in one run."""

from __future__ import annotations

import dagster as dg

from symbol_pipeline.defs.partitions import date_symbol_key

# The regressor ETFs' returns come first, on their own date partitions, then everything per symbol.
factor_returns_job = dg.define_asset_job(
    "factor_returns_job",
    selection=dg.AssetSelection.assets("factor_returns"),
)

symbol_layer_job = dg.define_asset_job(
    "symbol_layer_job",
    selection=dg.AssetSelection.groups("symbols") - dg.AssetSelection.assets("factor_returns"),
    description="Prices, every factor beta and the daily metrics for a range of dates × symbols.",
    # The steps run one after the other over the same data; a process per step would only add
    # the import time of pandas, scikit-learn and Dagster to each.
    executor_def=dg.in_process_executor,
    # DEBUG would log one line per partition and asset: 60,000 lines for 10,000 symbols.
    config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
)


def range_tags(first_date: str, last_date: str, first_symbol: str, last_symbol: str) -> dict[str, str]:
    """Tags that make one run cover dates × the symbols between two keys of the dynamic partition.

    build_schedule_from_partitioned_job would make one run per symbol (REFERENCE.md §3).
    """
    return {
        "dagster/asset_partition_range_start": str(date_symbol_key(first_date, first_symbol)),
        "dagster/asset_partition_range_end": str(date_symbol_key(last_date, last_symbol)),
    }
