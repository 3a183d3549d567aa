"""Symbol-layer assets. Each reads the dates × symbols of its run and calls services.symbol_layer.

The six date × symbol assets are one subsettable multi-asset: one step loads the run's data
once and writes prices, then betas, then metrics, while the UI can still materialise any subset.
A beta or metric on D depends on the same date × symbol partition of prices; the windows
before D are history read from storage (see _SAME_PARTITION). The work is in step.py, in small
typed pieces over a named scope; each step reports the partitions that hold data
(defs/events.py, scope.py), not the whole range of its run.
"""


# No `from __future__ import annotations`: Dagster checks the `context` annotation's class at
# decoration time, and a string annotation fails that check.
import contextlib
from collections.abc import Iterator

import dagster as dg

from symbol_pipeline.defs.partitions import symbol_date_partitions
from symbol_pipeline.defs.resources import DatabaseResource, PriceSourceResource
from symbol_pipeline.defs.symbols import checks, step
from symbol_pipeline.defs.symbols.frames import price_frame_check_spec
from symbol_pipeline.defs.symbols.scope import PRICES
from symbol_pipeline.defs.symbols.step import METRICS
from symbol_pipeline.runs.keys import DATE_DIMENSION
from symbol_pipeline.services import onboarding, symbol_layer


@contextlib.contextmanager
def _no_retry_for_missing_regressors() -> Iterator[None]:
    """A regressor ETF without a close on a run date is data the source does not have: retrying
    the step (the RetryPolicy's minutes of backoff) cannot fix it, so the run fails at once."""
    try:
        yield
    except symbol_layer.MissingRegressorError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


# A beta on D depends on its symbol's price partition on D (same date × symbol key); the window
# before D is history the step reads from storage, loading what is missing (CHANGELOG.md says why
# the windows are not declared as partition mappings).
_SAME_PARTITION = dg.AssetDep(PRICES)
_FACTOR_RETURNS_DEP = dg.AssetDep(
    "factor_returns", partition_mapping=dg.MultiToSingleDimensionPartitionMapping(DATE_DIMENSION)
)
_BETA_DESCRIPTIONS = {
    "market_beta": "90-session OLS beta of each symbol to SPY.",
    "ir_beta": "90-session OLS beta of each symbol to TLT.",
    "ridge_factor_betas": "90-session joint ridge betas to VTV, VUG, MTUM, QUAL, IWM and USMV.",
    "spread_factor_betas": "180-session OLS betas to the four factor spreads.",
}
_RETRY = dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL)


def _spec(partitions: dg.PartitionsDefinition, name: str, description: str, deps: list) -> dg.AssetSpec:
    return dg.AssetSpec(
        name, description=description, deps=deps, partitions_def=partitions,
        group_name="symbols", kinds={"python", "sql"}, skippable=True,
    )


def _specs(partitions: dg.PartitionsDefinition) -> list[dg.AssetSpec]:
    return [
        _spec(partitions, PRICES, "Daily raw closes, dividends and splits per symbol, with the history the betas need.", []),
        *[
            _spec(partitions, name, description, [_SAME_PARTITION, _FACTOR_RETURNS_DEP])
            for name, description in _BETA_DESCRIPTIONS.items()
        ],
        _spec(
            partitions,
            METRICS,
            "Last close, 1d to 252d returns, 21d and 63d volatility, and the day's betas per symbol.",
            # The 252-session returns read the history before D; the step loads it (load_prices).
            [*_BETA_DESCRIPTIONS, _SAME_PARTITION],
        ),
    ]


def build_symbol_layer_assets(
    date_partitions: dg.TimeWindowPartitionsDefinition, recovery: onboarding.RecoveryPolicy = onboarding.DEFAULT_RECOVERY
) -> list[dg.AssetsDefinition]:
    """`factor_returns` on the session partitions and the date × symbol multi-asset over them;
    `recovery`: the settings' retries of failed fetches and delisting rule."""
    partitions = symbol_date_partitions(date_partitions)

    @dg.asset(
        partitions_def=date_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=_RETRY,
        kinds={"python", "sql"},
        group_name="symbols",
    )
    def factor_returns(
        context: dg.AssetExecutionContext, database: DatabaseResource, price_source: PriceSourceResource
    ) -> dg.MaterializeResult:
        """Daily total returns of the eight regressor ETFs, loaded with the longest window behind them."""
        return step.factor_returns_step(context, database.engine(), price_source.source(), date_partitions)

    @dg.multi_asset(
        name="symbol_layer",
        specs=_specs(partitions),
        check_specs=[*checks.PRICE_CHECKS, price_frame_check_spec(PRICES), *checks.BETA_CHECKS],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=_RETRY,
        can_subset=True,
    )
    def symbol_layer_assets(
        context: dg.AssetExecutionContext, database: DatabaseResource, price_source: PriceSourceResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Prices, then the betas of the selected families, then the daily metrics, in that order."""
        with _no_retry_for_missing_regressors():
            run = step.step_scope(context, database.engine(), date_partitions, recovery)
            selected = {key.path[-1] for key in context.selected_asset_keys}
            yield from step.symbol_layer_step(context, run, price_source.source(), selected)

    return [factor_returns, symbol_layer_assets]
