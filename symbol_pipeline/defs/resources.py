"""Resources: one key per concept, the backend chosen from the environment."""

from __future__ import annotations

from functools import cached_property

import dagster as dg
from sqlalchemy.engine import Engine

from symbol_pipeline.sources.base import PriceSource


class DatabaseResource(dg.ConfigurableResource):
    """The project's database (SQLite locally, PostgreSQL in production)."""

    url: str

    def engine(self) -> Engine:
        from symbol_pipeline.storage.database import get_engine

        return get_engine(self.url)


class PriceSourceResource(dg.ConfigurableResource):
    """Where prices come from: `synthetic`, `csv:DIR` or `yfinance`."""

    spec: str

    @cached_property
    def _source(self) -> PriceSource:
        from symbol_pipeline.sources.registry import get_price_source

        return get_price_source(self.spec)

    def source(self) -> PriceSource:
        return self._source
