"""Symbol-layer assets. Each reads the dates × symbols of its run and calls services.symbol_layer.

The six date × symbol assets are one subsettable multi-asset: one step loads the run's data
once and writes prices, then betas, then metrics, while the UI can still materialise any subset.
A beta or metric on D depends on the same date × symbol partition of prices; the windows
before D are history read from storage (see _SAME_PARTITION). Each step reports the partitions
that hold data (defs/events.py, scope.py), not the whole range of its run.
"""


# No `from __future__ import annotations`: Dagster checks the `context` annotation's class at
# decoration time, and a string annotation fails that check.
import contextlib
import time
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from symbol_pipeline.defs.events import record_keys, record_partitions
from symbol_pipeline.defs.partitions import symbol_date_partitions
from symbol_pipeline.defs.resources import DatabaseResource, PriceSourceResource
from symbol_pipeline.defs.symbols import checks
from symbol_pipeline.defs.symbols.frames import price_frame_check_result, price_frame_check_spec
from symbol_pipeline.defs.symbols.scope import PartitionScope
from symbol_pipeline.lib.factors import BETA_GROUPS, FACTORS, REGRESSOR_ETFS, with_regressor_etfs
from symbol_pipeline.runs.keys import DATE_DIMENSION, dates_and_symbols, parse_date_key
from symbol_pipeline.services import onboarding, symbol_layer
from symbol_pipeline.services import symbols as symbol_service
from symbol_pipeline.sources.base import empty_prices, is_transient


def _run_scope(context: dg.AssetExecutionContext, database: DatabaseResource, recovery: onboarding.RecoveryPolicy):
    """(engine, dates, symbols to regress, skipped, fetched only) of this run: `error` symbols are
    skipped; delisted ones are fetched, so that they can return, but not regressed."""
    dates, symbols = dates_and_symbols(list(context.partition_keys))
    engine = database.engine()
    scope = symbol_service.run_scope(engine, symbols, dates, delisted_after_sessions=recovery.delisted_after_sessions)
    for what, names in (("now delisted", scope.delisted), ("active again", scope.reactivated),
                        ("delisted, fetched only", scope.fetch_only), ("failed, skipped", scope.skipped)):
        if names:
            context.log.info(f"{len(names)} symbols {what}: {', '.join(names[:20])}")
    return engine, dates, scope.regress, [*scope.skipped, *scope.fetch_only], scope.fetch_only


@contextlib.contextmanager
def _no_retry_for_missing_regressors() -> Iterator[None]:
    """A regressor ETF without a close on a run date is data the source does not have: retrying
    the step (the RetryPolicy's minutes of backoff) cannot fix it, so the run fails at once."""
    try:
        yield
    except symbol_layer.MissingRegressorError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


PRICES, METRICS = "symbol_prices", "symbol_daily_metrics"
# A beta on D depends on its symbol's price partition on D (same date × symbol key); the window
# before D is history the step reads from storage, loading what is missing. Declaring the
# 180-session window instead made the asset backfill daemon run prices, betas and metrics of
# each date in separate layers of runs, and a price backfill extend to 180 sessions of betas:
# the quick-start "backfill missing" had finished 26 of its runs after 18 minutes that way.
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


def _spec(partitions: dg.PartitionsDefinition, name: str, description: str, deps: list) -> dg.AssetSpec:
    return dg.AssetSpec(
        name, description=description, deps=deps, partitions_def=partitions,
        group_name="symbols", kinds={"python", "sql"}, skippable=True,
    )


def _prices(context, engine, source, dates, symbols, skipped, scope, recovery) -> tuple[list, set[str]]:
    """The prices step's check results (its partitions recorded), and the pending symbols it turned to `error`."""
    # The regressor ETFs come along: every beta of these dates needs their window too.
    wanted = with_regressor_etfs(symbols)
    fetched: list[pd.DataFrame] = []
    report = symbol_layer.load_prices(
        engine, source, wanted, dates, progress=context.log.info, on_fetched=fetched.append
    )
    frame_check = price_frame_check_result(pd.concat(fetched) if fetched else empty_prices(), PRICES)
    del fetched
    failed_pending = onboarding.fail_pending_without_prices(engine, report.failures, recovery)
    metadata = {
        "symbols": len(symbols),
        "dates": len(dates),
        "symbols_fetched": report.symbols_fetched,
        "rows_written": report.rows_written,
        "sessions_without_price": report.gaps_recorded,
        "fetch_failures": len(report.failures),
        "failed_symbols": dg.MetadataValue.json(dict(sorted(report.failures.items())[:50])),
        "onboarding_errors": len(failed_pending),
        "skipped_inactive": len(skipped),
        "seconds": round(report.seconds, 3),
    }
    pairs = scope.price_pairs(engine, dates, wanted, report.fetched_from)
    record_partitions(context, PRICES, pairs, metadata)
    events = [frame_check, *checks.price_checks(engine, symbols, dates)]
    return events, set(failed_pending)


def _betas(context, engine, dates, symbols, skipped, beta_assets, scope, recovery):
    factor_names = {name for asset in beta_assets for name in BETA_GROUPS[asset]}
    factors = [f for f in FACTORS if f.name in factor_names]
    report = symbol_layer.compute_betas(engine, symbols, dates, factors, progress=context.log.info)
    onboarding.settle_pending(engine, symbols, recovery)
    stored = scope.beta_pairs(engine, dates, symbols)
    for asset in beta_assets:
        record_partitions(
            context, asset, stored.get(asset, ()),
            {
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


def build_symbol_layer_assets(
    date_partitions: dg.TimeWindowPartitionsDefinition, recovery: onboarding.RecoveryPolicy = onboarding.DEFAULT_RECOVERY
) -> list[dg.AssetsDefinition]:
    """`factor_returns` on the session partitions and the date × symbol multi-asset over them;
    `recovery`: the settings' retries of failed fetches and delisting rule."""
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
    ) -> Iterator:
        """Daily total returns of the eight regressor ETFs, loaded with the longest window behind them."""
        started = time.perf_counter()
        dates = [parse_date_key(k) for k in context.partition_keys]
        engine = database.engine()
        report = symbol_layer.load_prices(engine, price_source.source(), list(REGRESSOR_ETFS), dates)
        if report.failures:
            message = f"regressor ETFs could not be fetched: {report.failures}"
            if any(is_transient(reason) for reason in report.failures.values()):
                raise symbol_layer.MissingRegressorError(message)  # the step's RetryPolicy tries again
            raise dg.Failure(description=message, allow_retries=False)
        # The ETF history it stored inside the range: sessions of factor_returns, and partitions
        # of symbol_prices, that hold data now; recorded as such.
        if report.fetched_from:
            scope = PartitionScope(date_partitions, context.instance, set(dates), set())
            pairs = scope.price_pairs(engine, dates, [], report.fetched_from)
            record_partitions(context, PRICES, pairs, {"loaded_by": "factor_returns"})
            record_keys(context, "factor_returns", scope.history_dates(pairs), {})
        latest = symbol_layer.etf_returns_on(engine, max(dates))
        yield dg.MaterializeResult(
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
        with _no_retry_for_missing_regressors():
            yield from _symbol_layer_step(context, database, price_source)

    def _symbol_layer_step(context, database, price_source) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        engine, dates, symbols, skipped, fetch_only = _run_scope(context, database, recovery)
        scope = PartitionScope(date_partitions, context.instance, set(dates), {*symbols, *fetch_only})
        selected = {key.path[-1] for key in context.selected_asset_keys}
        source = price_source.source()
        if PRICES in selected:
            events, failed = _prices(context, engine, source, dates, [*symbols, *fetch_only], skipped, scope, recovery)
            yield from events
            # Symbols whose onboarding just failed (unknown ticker, no data) get no beta rows.
            symbols = [s for s in symbols if s not in failed]
        else:
            # Betas or metrics without their prices (a UI subset of the assets).
            symbol_layer.ensure_regressor_prices(engine, source, symbols, dates, progress=context.log.info)
        # Delisted symbols are not regressed: they have no price on these dates, so their rows say
        # `no_price_on_date` with every estimate empty, and their partitions hold that record.
        symbols = [*symbols, *fetch_only]
        beta_assets = [name for name in _BETA_DESCRIPTIONS if name in selected]
        if beta_assets:
            yield from _betas(context, engine, dates, symbols, skipped, beta_assets, scope, recovery)
        if METRICS in selected:
            started = time.perf_counter()
            written = symbol_layer.compute_metrics(engine, symbols, dates)
            record_partitions(
                context, METRICS, scope.metric_pairs(engine, dates, symbols),
                {"rows_written": written, "skipped_inactive": len(skipped),
                 "seconds": round(time.perf_counter() - started, 3)},
            )

    return [factor_returns, symbol_layer_assets]
