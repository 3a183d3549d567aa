"""Symbol-layer assets. Each reads the dates × symbols of its run and calls services.symbol_layer."""


import time
from collections.abc import Iterator

import dagster as dg

from symbol_pipeline.defs.partitions import (
    DATE_DIMENSION,
    SYMBOL_DIMENSION,
    dates_and_symbols,
    symbol_date_partitions,
    trading_date_partitions,
)
from symbol_pipeline.defs.resources import DatabaseResource, PriceSourceResource
from symbol_pipeline.defs.symbols import checks
from symbol_pipeline.lib.factors import FACTORS, LONGEST_WINDOW, REGRESSOR_ETFS
from symbol_pipeline.services import symbol_layer
from symbol_pipeline.storage import universe

BETA_FAMILIES = {
    "market_beta": ("market_beta",),
    "ir_beta": ("ir_beta",),
    "ridge_factor_betas": tuple(f.name for f in FACTORS if f.family == "ridge"),
    "spread_factor_betas": tuple(f.name for f in FACTORS if f.family == "spread"),
}


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


@dg.asset(
    partitions_def=symbol_date_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL),
    check_specs=checks.PRICE_CHECKS,
    kinds={"python", "sql"},
    group_name="symbols",
)
def symbol_prices(
    context: dg.AssetExecutionContext, database: DatabaseResource, price_source: PriceSourceResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Daily raw closes, dividends and splits per symbol, with the history the betas need."""
    engine, dates, symbols, skipped = _run_scope(context, database)
    # The regressor ETFs come along: every beta of these dates needs their window too.
    wanted = list(dict.fromkeys([*symbols, *REGRESSOR_ETFS]))
    report = symbol_layer.load_prices(engine, price_source.source(), wanted, dates, progress=context.log.info)
    failed_pending = universe.fail_pending_without_prices(engine, report.failures)
    yield dg.MaterializeResult(
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
        }
    )
    yield from checks.price_checks(engine, symbols, dates)


@dg.asset(
    partitions_def=trading_date_partitions,
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
    dates = [symbol_layer.parse_partition_date(k) for k in context.partition_keys]
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


_BETA_DEPS = [
    # The window, declared: a beta on D reads its symbol's prices over the 180 sessions up to D.
    # Dagster therefore treats a beta as downstream of every price session in its window, and a
    # UI backfill that selects prices extends to the betas up to 180 sessions after the range;
    # those betas load any prices they lack themselves (ensure_regressor_prices).
    dg.AssetDep(symbol_prices, partition_mapping=_window_on_prices(LONGEST_WINDOW)),
    dg.AssetDep(factor_returns, partition_mapping=dg.MultiToSingleDimensionPartitionMapping(DATE_DIMENSION)),
]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(name, deps=_BETA_DEPS, partitions_def=symbol_date_partitions, group_name="symbols",
                     kinds={"python", "sql"}, description=description)
        for name, description in (
            ("market_beta", "90-session OLS beta of each symbol to SPY."),
            ("ir_beta", "90-session OLS beta of each symbol to TLT."),
            ("ridge_factor_betas", "90-session joint ridge betas to VTV, VUG, MTUM, QUAL, IWM and USMV."),
            ("spread_factor_betas", "180-session OLS betas to the four factor spreads."),
        )
    ],
    check_specs=checks.BETA_CHECKS,
    partitions_def=symbol_date_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
)
def symbol_factor_betas(
    context: dg.AssetExecutionContext, database: DatabaseResource, price_source: PriceSourceResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    engine, dates, symbols, skipped = _run_scope(context, database)
    symbol_layer.ensure_regressor_prices(engine, price_source.source(), symbols, dates, progress=context.log.info)
    selected = [key.path[-1] for key in context.selected_asset_keys]
    factor_names = {name for asset in selected for name in BETA_FAMILIES[asset]}
    factors = [f for f in FACTORS if f.name in factor_names]
    report = symbol_layer.compute_betas(engine, symbols, dates, factors, progress=context.log.info)
    universe.settle_pending(engine, symbols)
    for asset in selected:
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
                    if name in BETA_FAMILIES[asset]
                },
                "seconds": round(report.seconds, 3),
            },
        )
    yield from checks.beta_checks(engine, symbols, dates, selected)


@dg.asset(
    partitions_def=symbol_date_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        dg.AssetDep("market_beta"),
        dg.AssetDep("ir_beta"),
        dg.AssetDep("ridge_factor_betas"),
        dg.AssetDep("spread_factor_betas"),
        dg.AssetDep(symbol_prices, partition_mapping=_window_on_prices(symbol_layer.METRICS_SESSIONS - 1)),
    ],
    kinds={"python", "sql"},
    group_name="symbols",
)
def symbol_daily_metrics(
    context: dg.AssetExecutionContext, database: DatabaseResource, price_source: PriceSourceResource
) -> dg.MaterializeResult:
    """Last close, 1d to 252d returns, 21d and 63d volatility, and the day's betas per symbol."""
    started = time.perf_counter()
    engine, dates, symbols, skipped = _run_scope(context, database)
    symbol_layer.ensure_regressor_prices(engine, price_source.source(), symbols, dates, progress=context.log.info)
    written = symbol_layer.compute_metrics(engine, symbols, dates)
    return dg.MaterializeResult(
        metadata={"rows_written": written, "skipped_inactive": len(skipped),
                  "seconds": round(time.perf_counter() - started, 3)}
    )


SYMBOL_LAYER_ASSETS = [symbol_prices, factor_returns, symbol_factor_betas, symbol_daily_metrics]
