"""The symbol-layer step in small typed pieces: the run's scope, then prices, betas and metrics.

`StepScope` names what a run works on (its dates, the symbols it regresses, fetches only or skips,
the partitions it may report, the recovery policy); each piece takes it and the step's context
and returns or yields its events, and `symbol_layer_step` calls them in order for the assets
selected. Dagster's decorators stay in assets.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import dagster as dg
import pandas as pd
from sqlalchemy.engine import Engine

from symbol_pipeline.defs.events import record_keys, record_partitions
from symbol_pipeline.defs.symbols import checks
from symbol_pipeline.defs.symbols.frames import price_frame_check_result
from symbol_pipeline.defs.symbols.scope import PRICES, PartitionScope
from symbol_pipeline.lib.factors import BETA_GROUPS, FACTORS, REGRESSOR_ETFS, with_regressor_etfs
from symbol_pipeline.runs.keys import dates_and_symbols, parse_date_key
from symbol_pipeline.services import onboarding, symbol_layer
from symbol_pipeline.services import symbols as symbol_service
from symbol_pipeline.sources.base import PriceSource, empty_prices, is_transient

# PRICES is scope.py's: the one name of the prices asset.
__all__ = ["BETA_ASSETS", "METRICS", "PRICES", "StepScope", "factor_returns_step",
           "step_scope", "symbol_layer_step"]

METRICS = "symbol_daily_metrics"
BETA_ASSETS = tuple(BETA_GROUPS)  # market_beta, ir_beta, ridge_factor_betas, spread_factor_betas

Events = Iterator[dg.MaterializeResult | dg.AssetCheckResult]


@dataclass(frozen=True)
class StepScope:
    """What one run of the symbol layer works on.

    `regress`: the active symbols it regresses; `fetch_only`: delisted symbols, fetched so that
    they can return but not regressed; `skipped`: the symbols not computed (failed ones, and the
    fetched-only), reported in the metadata; `partitions`: which partitions the step may report.
    """

    engine: Engine
    dates: list[dt.date]
    regress: list[str]
    fetch_only: list[str]
    skipped: list[str]
    partitions: PartitionScope
    recovery: onboarding.RecoveryPolicy

    @property
    def fetched(self) -> list[str]:
        return [*self.regress, *self.fetch_only]


def step_scope(context: dg.AssetExecutionContext, engine: Engine, date_partitions: dg.TimeWindowPartitionsDefinition,
              recovery: onboarding.RecoveryPolicy) -> StepScope:
    """The scope of this run's partition keys: `error` symbols are skipped; delisted ones are
    fetched, so that they can return, but not regressed."""
    dates, symbols = dates_and_symbols(list(context.partition_keys))
    scope = symbol_service.run_scope(engine, symbols, dates, delisted_after_sessions=recovery.delisted_after_sessions)
    for what, names in (("now delisted", scope.delisted), ("active again", scope.reactivated),
                        ("delisted, fetched only", scope.fetch_only), ("failed, skipped", scope.skipped)):
        if names:
            context.log.info(f"{len(names)} symbols {what}: {', '.join(names[:20])}")
    partitions = PartitionScope(date_partitions, context.instance, set(dates), {*scope.regress, *scope.fetch_only})
    return StepScope(engine=engine, dates=dates, regress=list(scope.regress), fetch_only=list(scope.fetch_only),
                    skipped=[*scope.skipped, *scope.fetch_only], partitions=partitions, recovery=recovery)


def prices(context: dg.AssetExecutionContext, run: StepScope, source: PriceSource) -> tuple[list, set[str]]:
    """The prices step's check results (its partitions recorded), and the pending symbols it turned to `error`."""
    symbols = run.fetched
    # The regressor ETFs come along: every beta of these dates needs their window too.
    wanted = with_regressor_etfs(symbols)
    fetched: list[pd.DataFrame] = []
    report = symbol_layer.load_prices(
        run.engine, source, wanted, run.dates, progress=context.log.info, on_fetched=fetched.append
    )
    frame_check = price_frame_check_result(pd.concat(fetched) if fetched else empty_prices(), PRICES)
    del fetched
    failed_pending = onboarding.fail_pending_without_prices(run.engine, report.failures, run.recovery)
    metadata = {
        "symbols": len(symbols),
        "dates": len(run.dates),
        "symbols_fetched": report.symbols_fetched,
        "rows_written": report.rows_written,
        "sessions_without_price": report.gaps_recorded,
        "fetch_failures": len(report.failures),
        "failed_symbols": dg.MetadataValue.json(dict(sorted(report.failures.items())[:50])),
        "onboarding_errors": len(failed_pending),
        "skipped_inactive": len(run.skipped),
        "seconds": round(report.seconds, 3),
    }
    pairs = run.partitions.price_pairs(run.engine, run.dates, wanted, report.fetched_from)
    record_partitions(context, PRICES, pairs, metadata)
    events = [frame_check, *checks.price_checks(run.engine, symbols, run.dates)]
    return events, set(failed_pending)


def betas(context: dg.AssetExecutionContext, run: StepScope, symbols: Sequence[str],
          beta_assets: Sequence[str]) -> Iterator[dg.AssetCheckResult]:
    """The selected beta families of `symbols` computed and recorded; their checks."""
    factor_names = {name for asset in beta_assets for name in BETA_GROUPS[asset]}
    factors = [f for f in FACTORS if f.name in factor_names]
    report = symbol_layer.compute_betas(run.engine, symbols, run.dates, factors, progress=context.log.info)
    onboarding.settle_pending(run.engine, symbols, run.recovery)
    stored = run.partitions.beta_pairs(run.engine, run.dates, symbols)
    for asset in beta_assets:
        record_partitions(
            context, asset, stored.get(asset, ()),
            {
                "symbols_computed": report.symbols,
                "dates": report.dates,
                "rows_written": report.rows_written,
                "insufficient_data": report.insufficient,
                "capped": report.capped,
                "skipped_inactive": len(run.skipped),
                **{
                    f"median_r2_{name}": round(value, 4)
                    for name, value in report.median_r_squared.items()
                    if name in BETA_GROUPS[asset]
                },
                "seconds": round(report.seconds, 3),
            },
        )
    yield from checks.beta_checks(run.engine, symbols, run.dates, beta_assets)


def metrics(context: dg.AssetExecutionContext, run: StepScope, symbols: Sequence[str]) -> None:
    """The daily metrics of `symbols` computed and recorded."""
    started = time.perf_counter()
    written = symbol_layer.compute_metrics(run.engine, symbols, run.dates)
    record_partitions(
        context, METRICS, run.partitions.metric_pairs(run.engine, run.dates, symbols),
        {"rows_written": written, "skipped_inactive": len(run.skipped),
         "seconds": round(time.perf_counter() - started, 3)},
    )


def symbol_layer_step(context: dg.AssetExecutionContext, run: StepScope, source: PriceSource,
                      selected: set[str]) -> Events:
    """Prices, then the betas of the selected families, then the daily metrics, in that order."""
    symbols = run.regress
    if PRICES in selected:
        events, failed = prices(context, run, source)
        yield from events
        # Symbols whose onboarding just failed (unknown ticker, no data) get no beta rows.
        symbols = [s for s in symbols if s not in failed]
    else:
        # Betas or metrics without their prices (a UI subset of the assets).
        symbol_layer.ensure_regressor_prices(run.engine, source, symbols, run.dates, progress=context.log.info)
    # Delisted symbols are not regressed: they have no price on these dates, so their rows say
    # `no_price_on_date` with every estimate empty, and their partitions hold that record.
    symbols = [*symbols, *run.fetch_only]
    beta_assets = [name for name in BETA_ASSETS if name in selected]
    if beta_assets:
        yield from betas(context, run, symbols, beta_assets)
    if METRICS in selected:
        metrics(context, run, symbols)


def factor_returns_step(context: dg.AssetExecutionContext, engine: Engine, source: PriceSource,
                        date_partitions: dg.TimeWindowPartitionsDefinition) -> dg.MaterializeResult:
    """The regressor ETFs' closes over the run's sessions, loaded with the longest window behind them."""
    started = time.perf_counter()
    dates = [parse_date_key(k) for k in context.partition_keys]
    report = symbol_layer.load_prices(engine, source, list(REGRESSOR_ETFS), dates)
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
    return dg.MaterializeResult(
        metadata={
            "dates": len(dates),
            "rows_written": report.rows_written,
            **{f"return_{etf}": float(value) for etf, value in latest.items()},
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
