"""Resources: one key per concept, one class per backend, the backend chosen by the entry point.

As in dagster's `project_fully_featured`: `PriceSourceResource` is abstract and each backend is a
subclass with its own config, so the UI shows which source a deployment runs with and what it was
given. `price_source_resource` turns a `SYMBOL_PIPELINE_PRICE_SOURCE` spec into one of them.
"""

from __future__ import annotations

import abc
import json
import urllib.error
import urllib.request
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from sqlalchemy.engine import Engine

from symbol_pipeline.lib.rules import SettingError
from symbol_pipeline.sources.base import PriceSource
from symbol_pipeline.sources.csv_dir import CsvDirectorySource
from symbol_pipeline.sources.synthetic import SyntheticMarket
from symbol_pipeline.sources.yfinance_source import YFinanceSource
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.dialect import normalise_database_url

PRICE_SOURCE_SPECS = ("synthetic", "synthetic:SEED", "csv:DIR", "yfinance")
WEBHOOK_TIMEOUT_SECONDS = 5.0


class DatabaseResource(dg.ConfigurableResource):
    """The project's database (SQLite locally, PostgreSQL in production).

    `url` may be a `dg.EnvVar`; a `postgres://` or `postgresql://` URL is pinned to psycopg2 here.
    """

    url: str

    def engine(self) -> Engine:
        return get_engine(normalise_database_url(self.url))


# --- where prices come from ----------------------------------------------------------------------


class PriceSourceResource(dg.ConfigurableResource, abc.ABC):
    """Where prices come from: one subclass per backend; assets call `source()`."""

    @abc.abstractmethod
    def build_source(self) -> PriceSource:
        """A new source of this backend, configured from the resource's fields."""

    @cached_property
    def _source(self) -> PriceSource:
        return self.build_source()

    def source(self) -> PriceSource:
        """The source, built once per resource instance (the synthetic one caches its ETF draw)."""
        return self._source


class SyntheticPriceSourceResource(PriceSourceResource):
    """The offline synthetic market (`synthetic`, `synthetic:SEED`)."""

    seed: int
    universe_size: int

    def build_source(self) -> PriceSource:
        return SyntheticMarket(seed=self.seed, n_symbols=self.universe_size)


class CsvPriceSourceResource(PriceSourceResource):
    """A directory of `<SYMBOL>.csv` files of adjusted closes (`csv:DIR`)."""

    directory: str

    def build_source(self) -> PriceSource:
        return CsvDirectorySource(Path(self.directory).expanduser())


class YFinancePriceSourceResource(PriceSourceResource):
    """Yahoo Finance through `yfinance.download` (`yfinance`)."""

    def build_source(self) -> PriceSource:
        return YFinanceSource()


def price_source_resource(spec: str, *, synthetic_seed: int, synthetic_universe_size: int) -> PriceSourceResource:
    """The resource for a spec `synthetic`, `synthetic:SEED`, `csv:DIR` or `yfinance`.

    synthetic_seed: the seed when the spec names none; synthetic_universe_size: SYN0001.. names.
    Raises ValueError naming the valid forms for any other spec.
    """
    text = spec.strip()
    kind, _, arg = text.partition(":")
    kind = kind.strip().lower()
    if kind == "synthetic":
        seed = synthetic_seed
        if arg.strip():
            try:
                seed = int(arg)
            except ValueError:
                raise SettingError(f"price source {text!r}: SEED must be an integer") from None
        return SyntheticPriceSourceResource(seed=seed, universe_size=synthetic_universe_size)
    if kind == "csv" and arg.strip():
        return CsvPriceSourceResource(directory=arg.strip())
    if kind == "yfinance" and not arg:
        return YFinancePriceSourceResource()
    raise SettingError(f"unknown price source {text!r}; valid forms: {', '.join(PRICE_SOURCE_SPECS)}")


class StressScenariosResource(dg.ConfigurableResource):
    """Stress scenarios beyond the built-in ones: a JSON file (validated on load), or none."""

    extra_file: str | None = None


# --- alerts --------------------------------------------------------------------------------------


class AlertWebhookResource(dg.ConfigurableResource):
    """Where run-failure alerts are posted as JSON; without a URL nothing is posted."""

    url: str | None = None

    def post(self, payload: dict[str, Any]) -> str | None:
        """POST `payload`; "sent <status>", "error: <reason>", or None without a URL. Never raises.

        An alert that cannot be delivered must not turn into a second failure: the row in
        pipeline_alerts stays the record, with the delivery outcome beside it.
        """
        if not self.url:
            return None
        body = json.dumps(payload, default=str).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "symbol-pipeline"},
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
                return f"sent {response.status}"
        except urllib.error.HTTPError as exc:
            return f"error: HTTP {exc.code}"
        except Exception as exc:  # a webhook outage, a bad URL, a timeout: all just recorded
            return f"error: {type(exc).__name__}: {exc}"[:32]
