"""Which date × symbol partitions a symbol-layer step reports: those that hold data now.

A run reports its own partitions that the database holds a row for, and, for prices, also the
history it loaded that falls inside the partition range (the first run's window, an onboarding's
history), so that Dagster's partition status is what the database holds. History before the
first partition stays upstream data that the windows read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from functools import cached_property

import dagster as dg
import pandas as pd
from sqlalchemy.engine import Engine

from symbol_pipeline.lib.factors import BETA_GROUPS, REGRESSOR_ETFS
from symbol_pipeline.runs.keys import SYMBOL_DIMENSION, date_symbol_key
from symbol_pipeline.storage import coverage

Pairs = list[tuple[str, str]]
PRICES = "symbol_prices"


class PartitionScope:
    """The run's dates and symbols, and the partitions that exist (range start, dynamic keys)."""

    def __init__(self, dates_def: dg.TimeWindowPartitionsDefinition, instance: dg.DagsterInstance,
                 dates: set[dt.date], symbols: set[str]) -> None:
        self.dates = dates
        self.symbols = symbols
        self._dates_def = dates_def
        self._instance = instance

    @cached_property
    def _valid_dates(self) -> set[dt.date]:
        return {dt.date.fromisoformat(k) for k in self._dates_def.get_partition_keys()}

    @cached_property
    def _valid_symbols(self) -> set[str]:
        # Read once per step: every asset of the step reports against the same keys.
        return set(self._instance.get_dynamic_partitions(SYMBOL_DIMENSION))

    def _existing(self, frame: pd.DataFrame) -> Pairs:
        """(date, symbol) keys of `frame` that are partitions of the assets."""
        if frame.empty:
            return []
        keep = frame["date"].isin(self._valid_dates) & frame["symbol"].isin(self._valid_symbols)
        chosen = frame.loc[keep, ["date", "symbol"]].drop_duplicates()
        return list(zip(chosen["date"].astype(str), chosen["symbol"]))

    def _in_run(self, frame: pd.DataFrame) -> pd.Series:
        return frame["date"].isin(self.dates) & frame["symbol"].isin(self.symbols)

    def price_pairs(self, engine: Engine, dates: Iterable[dt.date], symbols: Iterable[str],
                    fetched_from: Mapping[str, dt.date]) -> Pairs:
        """The run's partitions with a price or a recorded gap, and the in-range history it loaded."""
        wanted = sorted(set(symbols) | set(fetched_from))
        dates = list(dates)
        first = min([*dates, *fetched_from.values()])
        with engine.connect() as conn:
            stored = coverage.price_keys(conn, wanted, first, max(dates))
        since = stored["symbol"].map(fetched_from)
        loaded = since.notna() & (stored["date"] >= since.fillna(dt.date.max))
        own = self._in_run(stored)
        history = self._existing(stored[loaded & ~own])
        return [*self._existing(stored[own]), *self._not_recorded(PRICES, history)]

    def _not_recorded(self, asset: str, pairs: Pairs) -> Pairs:
        """The pairs whose partition has no materialisation yet: a symbol re-fetched from its
        window's start (one with a hole or a recorded gap) is not recorded again every day."""
        if not pairs:
            return []
        keys = {str(date_symbol_key(date, symbol)): (date, symbol) for date, symbol in pairs}
        recorded = self._instance.event_log_storage.get_latest_storage_id_by_partition(
            dg.AssetKey(asset), dg.DagsterEventType.ASSET_MATERIALIZATION, set(keys)
        )
        return [pair for key, pair in keys.items() if key not in recorded]

    def history_dates(self, pairs: Pairs) -> list[str]:
        """Dates before the run's own, on which every regressor ETF holds a price (or a gap)."""
        etfs = set(REGRESSOR_ETFS)
        by_date: dict[str, set[str]] = {}
        for date, symbol in pairs:
            if symbol in etfs:
                by_date.setdefault(date, set()).add(symbol)
        own = {str(d) for d in self.dates}
        return sorted(d for d, names in by_date.items() if names == etfs and d not in own)

    def beta_pairs(self, engine: Engine, dates: Iterable[dt.date], symbols: Iterable[str]) -> dict[str, Pairs]:
        """Per beta asset, the run's partitions with a row of its factors, of any quality."""
        dates = list(dates)
        with engine.connect() as conn:
            stored = coverage.beta_keys(conn, sorted(symbols), min(dates), max(dates))
        stored = stored[self._in_run(stored)]
        asset_of = {factor: asset for asset, factors in BETA_GROUPS.items() for factor in factors}
        stored = stored.assign(asset=stored["factor"].map(asset_of))
        return {asset: self._existing(group) for asset, group in stored.groupby("asset")}

    def metric_pairs(self, engine: Engine, dates: Iterable[dt.date], symbols: Iterable[str]) -> Pairs:
        """The run's partitions with a daily-metrics row."""
        dates = list(dates)
        with engine.connect() as conn:
            stored = coverage.metric_keys(conn, sorted(symbols), min(dates), max(dates))
        return self._existing(stored[self._in_run(stored)])
