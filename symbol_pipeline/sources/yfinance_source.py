"""Raw closes, dividends and splits from Yahoo Finance through `yfinance.download`.

Yahoo's `Close` (with `auto_adjust=False`) is adjusted for every split after the row, as of the
day of the fetch, and `Dividends` likewise; `Adj Close` is additionally dividend-adjusted. This
adapter undoes the split adjustment inside the fetched data,

    raw close_t = Close_t * product of `Stock Splits` ratios on sessions strictly after t,

so that (close_t + dividend_t) * split_ratio_t / close_(t-1) - 1 is the total return
(docs/methodology.md) and stored closes never need restating after a later dividend.

Limits, by construction of Yahoo's data: a split after `end` is not in the fetched rows, so when
`end` is in the past the reconstructed levels are scaled by the splits since then (returns within
the fetch are unaffected; a daily fetch ending at the latest session has no such split). The
dividend identity is Yahoo's ex-date cash total return; Yahoo's `Adj Close` ratio instead uses
Close_t / (Close_(t-1) - Dividend_t), which differs on an ex-date by about
(dividend / close) * return, i.e. 1e-5..1e-4. Capital-gain distributions of funds are not added.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from symbol_pipeline.sources.base import (
    PRICE_COLUMNS,
    TRANSIENT_FAILURE,
    FetchResult,
    PriceSource,
    empty_prices,
    split_valid_symbols,
)

log = logging.getLogger(__name__)

NO_DATA = "no data returned (unknown or delisted ticker?)"
# Column names yfinance uses for one ticker's fields (the other column level holds tickers).
YF_FIELDS = frozenset(
    {"Open", "High", "Low", "Close", "Adj Close", "Volume", "Dividends", "Stock Splits", "Capital Gains", "Repaired?"}
)


def _default_download(*args, **kwargs):
    import yfinance  # imported lazily: it is slow to import and only this source needs it

    return yfinance.download(*args, **kwargs)


def split_by_ticker(frame: pd.DataFrame | None, tickers: Sequence[str]) -> dict[str, pd.DataFrame]:
    """One frame of yfinance field columns per ticker, whatever the column layout of `frame`.

    Handles (Ticker, Price) columns (group_by="ticker"), (Price, Ticker) (group_by="column"), and
    single-level columns, which yfinance returns for one ticker with multi_level_index=False.
    """
    if frame is None or frame.empty:
        return {}
    columns = frame.columns
    if isinstance(columns, pd.MultiIndex) and columns.nlevels == 2:
        overlap = [len(set(map(str, columns.get_level_values(i))) & YF_FIELDS) for i in (0, 1)]
        ticker_level = 1 if overlap[0] >= overlap[1] else 0
        out = {}
        for ticker in columns.get_level_values(ticker_level).unique():
            sub = frame.xs(ticker, axis=1, level=ticker_level)
            out[str(ticker).upper()] = sub.loc[:, ~sub.columns.duplicated()]
        return out
    if len(tickers) == 1 and set(map(str, columns)) & YF_FIELDS:
        return {str(tickers[0]).upper(): frame}
    raise ValueError(f"unexpected yfinance frame layout for {len(tickers)} tickers: columns {list(columns)[:6]}")


def raw_prices(symbol: str, frame: pd.DataFrame) -> pd.DataFrame:
    """PRICE_COLUMNS rows from one ticker's yfinance fields; empty when Close is all missing."""
    if "Close" not in frame.columns:
        return empty_prices()
    frame = frame[frame["Close"].notna()]
    if frame.empty:
        return empty_prices()
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_localize(None)  # keep the exchange's local date, the session
    frame = frame.set_axis(index.normalize(), axis=0).sort_index()
    frame = frame[~frame.index.duplicated(keep="first")]

    def col(name: str, default: float) -> np.ndarray:
        if name not in frame.columns:
            return np.full(len(frame), default)
        return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64")

    splits = col("Stock Splits", 0.0)
    splits = np.where(np.isfinite(splits) & (splits > 0), splits, 1.0)  # yfinance writes 0 for "no split"
    # Product of the split ratios strictly after each row: undoes Yahoo's split adjustment.
    later = np.append(np.cumprod(splits[::-1])[::-1][1:], 1.0)
    dividends = np.nan_to_num(col("Dividends", 0.0), nan=0.0)
    out = pd.DataFrame(
        {
            "symbol": symbol,
            "date": [d.date() for d in frame.index],
            "open": col("Open", np.nan) * later,
            "high": col("High", np.nan) * later,
            "low": col("Low", np.nan) * later,
            "close": col("Close", np.nan) * later,
            "adj_close": col("Adj Close", np.nan),
            "volume": col("Volume", np.nan) / later,
            "dividend": dividends * later,
            "split_ratio": splits,
        }
    )
    return out[list(PRICE_COLUMNS)]


class YFinanceSource(PriceSource):
    """Yahoo Finance via `yfinance.download`, many tickers per call, retried with backoff.

    download: the function to call (yfinance.download); tests pass a fake returning recorded frames.
    chunk_size: tickers per call. max_attempts: calls per chunk before its tickers are reported
    failed; waits backoff_seconds * 2**k between them through `sleep`.
    """

    name = "yfinance"
    adjusted_only = False

    def __init__(
        self,
        download: Callable[..., pd.DataFrame | None] | None = None,
        *,
        chunk_size: int = 100,
        max_attempts: int = 4,
        backoff_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        threads: bool = True,
    ) -> None:
        if chunk_size < 1 or max_attempts < 1:
            raise ValueError("chunk_size and max_attempts must be at least 1")
        self.download = download or _default_download
        self.chunk_size = chunk_size
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.threads = threads

    def _download_chunk(self, tickers: list[str], start: dt.date, end: dt.date) -> pd.DataFrame | None:
        for attempt in range(self.max_attempts):
            try:
                # Always through today, whatever `end` is: Yahoo's Close is adjusted for every split
                # up to today, so undoing that adjustment needs every such split in the data.
                # fetch() cuts the rows to [start, end] afterwards.
                return self.download(
                    tickers,
                    start=start.isoformat(),
                    group_by="ticker",
                    auto_adjust=False,
                    actions=True,
                    threads=self.threads,
                    progress=False,
                )
            except Exception as exc:  # yfinance raises many types (HTTP, rate limit, JSON)
                if attempt + 1 == self.max_attempts:
                    raise
                delay = self.backoff_seconds * 2**attempt
                log.warning("yfinance download of %d tickers failed (%s); retry in %.1fs", len(tickers), exc, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")

    def fetch(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> FetchResult:
        start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
        tickers, failures = split_valid_symbols(symbols)
        frames: list[pd.DataFrame] = []
        for i in range(0, len(tickers), self.chunk_size):
            chunk = tickers[i : i + self.chunk_size]
            try:
                data = split_by_ticker(self._download_chunk(chunk, start, end), chunk)
            except Exception as exc:
                reason = f"{TRANSIENT_FAILURE} after {self.max_attempts} attempts: {type(exc).__name__}: {exc}"
                failures.update(dict.fromkeys(chunk, reason))
                continue
            for symbol in chunk:
                prices = raw_prices(symbol, data[symbol]) if symbol in data else empty_prices()
                prices = prices[(prices["date"] >= start) & (prices["date"] <= end)]
                if prices.empty:
                    failures[symbol] = NO_DATA
                else:
                    frames.append(prices)
        if not frames:
            return FetchResult(empty_prices(), failures)
        return FetchResult(pd.concat(frames, ignore_index=True), failures)
