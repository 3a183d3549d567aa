"""Symbol-layer assets. Each reads the dates × symbols of its run and calls services.symbol_layer.

The six date × symbol assets are one subsettable multi-asset: one step loads the run's data
once and writes prices, then betas, then metrics, while the UI can still materialise any subset.
The windows between them are declared (a beta on D reads 180 sessions of its symbol's prices).
Their price: for data-version provenance Dagster enumerates every upstream partition of a
window, 1.8 million keys for 10,000 symbols, about 40 s of a daily run (cProfile, 10,000
symbols on PostgreSQL); see the closing note of the symbol-layer issue.
"""


# No `from __future__ import annotations`: Dagster checks the `context` annotation's class at
# decoration time, and a string annotation fails that check.
import time
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from symbol_pipeline.defs.partitions import symbol_date_partitions
from symbol_pipeline.defs.resources import DatabaseResource, PriceSourceResource
from symbol_pipeline.defs.symbols import checks
from symbol_pipeline.defs.symbols.frames import price_frame_check_result, price_frame_check_spec
from symbol_pipeline.lib.factors import BETA_GROUPS, FACTORS, LONGEST_WINDOW, REGRESSOR_ETFS, with_regressor_etfs
from symbol_pipeline.runs.keys import DATE_DIMENSION, SYMBOL_DIMENSION, dates_and_symbols, parse_date_key
from symbol_pipeline.services import onboarding, symbol_layer
from symbol_pipeline.sources.base import empty_prices
from symbol_pipeline.storage import universe


def _window_on_prices(sessions_back: int) -> dg.MultiPartitionMapping:
    """Date D needs the `sessions_back` sessions before it, of the same symbol only."""
    return dg.MultiPartitionMapping(
        {
            DATE_DIMENSION: dg.DimensionPartitionMapping(
                DATE_DIMENSION, dg.TimeWindowPartitionMapping(start_offset=-sessions_back, end_offset=0)
            ),
            SYMBOL_DIMENSION: dg.DimensionPartitionMapping(SYMBOL_DIMENSION, dg.IdentityPartitionMapping()),
        }
    )


def _run_scope(context: dg.AssetExecutionContext, database: DatabaseResource):
    """Dates and computable symbols of this run; delisted and failed symbols are left out."""
    dates, symbols = dates_and_symbols(list(context.partition_keys))
    engine = database.engine()
    with engine.connect() as conn:
        statuses = universe.known_symbols(conn, symbols)
    skipped = sorted(s for s in symbols if statuses.get(s) in (universe.STATUS_DELISTED, universe.STATUS_ERROR))
    if skipped:
        context.log.info(f"skipping {len(skipped)} delisted or failed symbols: {', '.join(skipped[:20])}")
    return engine, dates, [s for s in symbols if s not in set(skipped)], skipped


PRICES, METRICS = "symbol_prices", "symbol_daily_metrics"
_PRICE_WINDOW = _window_on_prices(LONGEST_WINDOW)
_FACTOR_RETURNS_DEP = dg.AssetDep(
    "factor_returns", partition_mapping=dg.MultiToSingleDimensionPartitionMapping(DATE_DIMENSION)
)
_BETA_DESCRIPTIONS = {
    "market_beta": "90-session OLS beta of each symbol to SPY.",
    "ir_beta": "90-session OLS beta of each symbol to TLT.",
    "ridge_factor_betas": "90-session joint ridge betas to VTV, VUG, MTUM, QUAL, IWM and USMV.",
    "spread_factor_betas": "180-session OLS betas to the four factor spreads.",
}


def _spec(partitions: dg.PartitionsDefinition, name: str, description: str, deps: list) -> dg.AssetSpec:
    return dg.AssetSpec(
        name, description=description, deps=deps, partitions_def=partitions,
        group_name="symbols", kinds={"python", "sql"}, skippable=True,
    )


def _prices(context, engine, source, dates, symbols, skipped) -> tuple[list, set[str]]:
    """The prices step's events, and the pending symbols it turned to `error`."""
    # The regressor ETFs come along: every beta of these dates needs their window too.
    wanted = with_regressor_etfs(symbols)
    fetched: list[pd.DataFrame] = []
    report = symbol_layer.load_prices(
        engine, source, wanted, dates, progress=context.log.info, on_fetched=fetched.append
    )
    frame_check = price_frame_check_result(pd.concat(fetched) if fetched else empty_prices(), PRICES)
    failed_pending = onboarding.fail_pending_without_prices(engine, report.failures)
    result = dg.MaterializeResult(
        asset_key=PRICES,
        metadata={
            "symbols": len(symbols),
            "dates": len(dates),
            "symbols_fetched": report.symbols_fetched,
            "rows_written": report.rows_written,
            "fetch_failures": len(report.failures),
            "failed_symbols": dg.MetadataValue.json(dict(sorted(report.failures.items())[:50])),
            "onboarding_errors": len(failed_pending),
            "skipped_inactive": len(skipped),
            "seconds": round(report.seconds, 3),
        },
    )
    return [result, frame_check, *checks.price_checks(engine, symbols, dates)], set(failed_pending)


def _betas(context, engine, dates, symbols, skipped, beta_assets):
    factor_names = {name for asset in beta_assets for name in BETA_GROUPS[asset]}
    factors = [f for f in FACTORS if f.name in factor_names]
    report = symbol_layer.compute_betas(engine, symbols, dates, factors, progress=context.log.info)
    onboarding.settle_pending(engine, symbols)
    for asset in beta_assets:
        yield dg.MaterializeResult(
            asset_key=asset,
            metadata={
                "symbols_computed": report.symbols,
                "dates": report.dates,
                "rows_written": report.rows_written,
                "insufficient_data": report.insufficient,
                "capped": report.capped,
                "skipped_inactive": len(skipped),
                **{
                    f"median_r2_{name}": round(value, 4)
                    for name, value in report.median_r_squared.items()
                    if name in BETA_GROUPS[asset]
                },
                "seconds": round(report.seconds, 3),
            },
        )
    yield from checks.beta_checks(engine, symbols, dates, beta_assets)


def build_symbol_layer_assets(date_partitions: dg.TimeWindowPartitionsDefinition) -> list[dg.AssetsDefinition]:
    """`factor_returns` on the session partitions and the date × symbol multi-asset over them."""
    partitions = symbol_date_partitions(date_partitions)

    @dg.asset(
        partitions_def=date_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL),
        kinds={"python", "sql"},
        group_name="symbols",
    )
    def factor_returns(
        context: dg.AssetExecutionContext, database: DatabaseResource, price_source: PriceSourceResource
    ) -> dg.MaterializeResult:
        """Daily total returns of the eight regressor ETFs, loaded with the longest window behind them."""
        started = time.perf_counter()
        dates = [parse_date_key(k) for k in context.partition_keys]
        engine = database.engine()
        report = symbol_layer.load_prices(engine, price_source.source(), list(REGRESSOR_ETFS), dates)
        if report.failures:
            raise symbol_layer.MissingRegressorError(f"regressor ETFs could not be fetched: {report.failures}")
        latest = symbol_layer.etf_returns_on(engine, max(dates))
        return dg.MaterializeResult(
            metadata={
                "dates": len(dates),
                "rows_written": report.rows_written,
                **{f"return_{etf}": float(value) for etf, value in latest.items()},
                "seconds": round(time.perf_counter() - started, 3),
            }
        )

    specs = [
        _spec(partitions, PRICES, "Daily raw closes, dividends and splits per symbol, with the history the betas need.", []),
        *[
            # The window, declared: Dagster treats a beta as downstream of every price session in
            # it, so a UI backfill selecting prices extends to the betas whose windows hold them;
            # those load any price they lack (ensure_regressor_prices).
            _spec(partitions, name, description, [dg.AssetDep(PRICES, partition_mapping=_PRICE_WINDOW), _FACTOR_RETURNS_DEP])
            for name, description in _BETA_DESCRIPTIONS.items()
        ],
        _spec(
            partitions,
            METRICS,
            "Last close, 1d to 252d returns, 21d and 63d volatility, and the day's betas per symbol.",
            # One mapping per upstream key in a multi-asset: the betas' 180 sessions. The 252-session
            # return reads further back; the step loads that history itself (load_prices).
            [*_BETA_DESCRIPTIONS, dg.AssetDep(PRICES, partition_mapping=_PRICE_WINDOW)],
        ),
    ]

    @dg.multi_asset(
        name="symbol_layer",
        specs=specs,
        check_specs=[*checks.PRICE_CHECKS, price_frame_check_spec(PRICES), *checks.BETA_CHECKS],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL),
        can_subset=True,
    )
    def symbol_layer_assets(
        context: dg.AssetExecutionContext, database: DatabaseResource, price_source: PriceSourceResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Prices, then the betas of the selected families, then the daily metrics, in that order."""
        engine, dates, symbols, skipped = _run_scope(context, database)
        selected = {key.path[-1] for key in context.selected_asset_keys}
        source = price_source.source()
        if PRICES in selected:
            events, failed = _prices(context, engine, source, dates, symbols, skipped)
            yield from events
            # Symbols whose onboarding just failed (unknown ticker, no data) get no beta rows.
            symbols = [s for s in symbols if s not in failed]
        else:
            # Betas or metrics without their prices (a UI subset, or a backfill's later windows).
            symbol_layer.ensure_regressor_prices(engine, source, symbols, dates, progress=context.log.info)
        beta_assets = [name for name in _BETA_DESCRIPTIONS if name in selected]
        if beta_assets:
            yield from _betas(context, engine, dates, symbols, skipped, beta_assets)
        if METRICS in selected:
            started = time.perf_counter()
            written = symbol_layer.compute_metrics(engine, symbols, dates)
            yield dg.MaterializeResult(
                asset_key=METRICS,
                metadata={"rows_written": written, "skipped_inactive": len(skipped),
                          "seconds": round(time.perf_counter() - started, 3)},
            )

    return [factor_returns, symbol_layer_assets]
