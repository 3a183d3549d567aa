"""Adjusted closes from a directory of `<SYMBOL>.csv` files, as yfinance or pandas writes them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from symbol_pipeline.sources.base import PRICE_COLUMNS, FetchResult, PriceSource, empty_prices, split_valid_symbols


class MalformedFileError(ValueError):
    """A price file that cannot be read as one row per date with a positive close."""


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column as float64; a non-empty cell that is not a number makes the file malformed."""
    raw = frame[column]
    try:
        return raw.astype("float64")  # Python's float(): exact, unlike pandas' fast string parser
    except ValueError:
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    first = bad.idxmax() if bad.any() else values.isna().idxmax()
    raise MalformedFileError(f"non-numeric {column!r} value {raw[first]!r} on row {first + 2}")


def read_price_file(path: Path) -> pd.DataFrame:
    """One price file as PRICE_COLUMNS minus `symbol`, sorted by date; raises MalformedFileError.

    The close basis is `Adj Close` when present, else `Close` taken as already adjusted; either
    way the rows are adjusted-only (dividend 0, split 1) and open/high/low are scaled to it.
    """
    try:
        # Every column as text first: numbers are then parsed once, as float64, with exact round trip.
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MalformedFileError(f"cannot parse as CSV: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    date_col = next((c for c in frame.columns if c.lower() in ("date", "datetime")), None)
    if date_col is None:
        raise MalformedFileError(f"no Date column (columns: {', '.join(frame.columns) or 'none'})")
    basis = "Adj Close" if "Adj Close" in frame.columns else "Close" if "Close" in frame.columns else None
    if basis is None:
        raise MalformedFileError("neither an 'Adj Close' nor a 'Close' column")

    # yfinance writes '2024-01-02' or '2024-01-02 00:00:00-05:00': the session is the local date.
    text = frame[date_col].astype(str).str.strip().str.slice(0, 10)
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        first = int(dates.isna().to_numpy().argmax())
        raise MalformedFileError(f"unreadable date {frame[date_col].iloc[first]!r} on row {first + 2}")
    if dates.duplicated().any():
        raise MalformedFileError(f"duplicate date {dates[dates.duplicated()].iloc[0].date()}")

    close = _numeric(frame, basis)
    keep = close.notna().to_numpy()  # an empty close is a missing session, not an error
    if (close[keep] <= 0).any():
        first = close[keep][close[keep] <= 0].index[0]
        raise MalformedFileError(f"non-positive {basis} {close[first]} on {dates[first].date()}")
    scale = pd.Series(1.0, index=frame.index)
    if basis == "Adj Close" and "Close" in frame.columns:
        scale = close / _numeric(frame, "Close")  # keeps open/high/low on the adjusted basis

    out = pd.DataFrame({"date": dates.dt.date})
    for column, name in (("Open", "open"), ("High", "high"), ("Low", "low")):
        out[name] = _numeric(frame, column) * scale if column in frame.columns else np.nan
    out["close"] = close
    out["adj_close"] = close
    out["volume"] = _numeric(frame, "Volume") if "Volume" in frame.columns else np.nan
    out["dividend"] = 0.0
    out["split_ratio"] = 1.0
    out = out[keep].sort_values("date", kind="stable").reset_index(drop=True)
    return out.astype({c: "float64" for c in PRICE_COLUMNS[2:]})


class CsvDirectorySource(PriceSource):
    """Prices from `<directory>/<SYMBOL>.csv` files of adjusted closes (spec `csv:DIR`)."""

    name = "csv"
    adjusted_only = True

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"CsvDirectorySource({str(self.directory)!r})"

    def _path(self, symbol: str) -> Path:
        path = self.directory / f"{symbol}.csv"
        if not path.exists() and self.directory.is_dir():
            # Tolerate lower-case file names (aapl.csv) without guessing anything else.
            for candidate in self.directory.glob("*.csv"):
                if candidate.stem.upper() == symbol:
                    return candidate
        return path

    def available_symbols(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem.upper() for p in self.directory.glob("*.csv"))

    def fetch(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> FetchResult:
        start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
        valid, failures = split_valid_symbols(symbols)
        frames: list[pd.DataFrame] = []
        for symbol in valid:
            path = self._path(symbol)
            # A failure becomes the symbol's status reason, shown to API users: it names the
            # file, never the server's directory.
            if not path.is_file():
                failures[symbol] = f"no data file {symbol}.csv"
                continue
            try:
                prices = read_price_file(path)
            except MalformedFileError as exc:
                failures[symbol] = f"malformed data file {path.name}: {exc}"
                continue
            prices = prices[(prices["date"] >= start) & (prices["date"] <= end)]
            if len(prices):
                prices.insert(0, "symbol", symbol)
                frames.append(prices)
        if not frames:
            return FetchResult(empty_prices(), failures)
        return FetchResult(pd.concat(frames, ignore_index=True)[list(PRICE_COLUMNS)], failures)
