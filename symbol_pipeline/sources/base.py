"""The price-source interface every implementation follows."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from symbol_pipeline.lib.symbols import InvalidSymbolError, validate_symbol

# Columns of a price frame, one row per (symbol, date) with a close.
PRICE_COLUMNS: tuple[str, ...] = (
    "symbol",
    "date",
    "open",
    "high",
    "low",
    "close",
    "adj_close",
    "volume",
    "dividend",
    "split_ratio",
)


# A fetch failure that another attempt may fix (network, rate limit) starts with this; every other
# reason (no data, unknown or malformed ticker, a missing file) is permanent: no retry within a
# run can fix it, so the run fails at once and the symbol is `error` with the reason.
TRANSIENT_FAILURE = "download failed"


def is_transient(reason: str) -> bool:
    return reason.startswith(TRANSIENT_FAILURE)


class UnknownSymbolError(LookupError):
    """The source does not know the ticker at all."""


@dataclass
class FetchResult:
    """What a fetch returned.

    `prices` has PRICE_COLUMNS (`date` as datetime.date, floats as float64) and holds only the
    rows the source had. The identity the returns rely on holds across rows of one symbol:
    total return on t = (close_t + dividend_t) * split_ratio_t / close_(t-1) - 1, with close the
    raw close, or the adjusted close with dividend 0 and split_ratio 1 for adjusted-only sources.
    `failures` maps a symbol that could not be fetched to the reason, in words a user can act on.
    """

    prices: pd.DataFrame
    failures: dict[str, str] = field(default_factory=dict)


def split_valid_symbols(symbols: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The valid tickers, upper-cased and de-duplicated in order, and a reason for each invalid one.

    Every source starts a fetch with this: one bad ticker is a failure, never an exception.
    """
    valid: dict[str, None] = {}
    failures: dict[str, str] = {}
    for raw in symbols:
        try:
            valid.setdefault(validate_symbol(raw), None)
        except InvalidSymbolError as exc:
            failures[str(raw)] = str(exc)
    return list(valid), failures


def empty_prices() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in PRICE_COLUMNS}).astype(
        {"symbol": "object", "date": "object"}
    )


class PriceSource(abc.ABC):
    """A source of daily prices. Implementations never raise for one bad symbol: they report it."""

    name: str = "base"
    # True when closes are adjusted closes (no raw closes, dividends or splits): then a
    # pipeline must re-fetch the whole window it uses, since adjusted history is restated.
    adjusted_only: bool = False

    @abc.abstractmethod
    def fetch(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> FetchResult:
        """Daily prices for `symbols` on sessions in [start, end], both included."""

    def available_symbols(self) -> list[str] | None:
        """Every symbol the source can serve, when it can tell (None when it cannot)."""
        return None
