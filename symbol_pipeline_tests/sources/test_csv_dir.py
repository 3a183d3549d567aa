"""The CSV directory source: the shared real-prices files and malformed files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from symbol_pipeline.lib.sessions import is_session
from symbol_pipeline.sources.base import PRICE_COLUMNS
from symbol_pipeline.sources.csv_dir import CsvDirectorySource

D = dt.date
REAL_PRICES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real-prices"

needs_real = pytest.mark.skipif(not REAL_PRICES.is_dir(), reason=f"no shared real prices at {REAL_PRICES}")


@needs_real
def test_real_directory_round_trip() -> None:
    source = CsvDirectorySource(REAL_PRICES)
    symbols = source.available_symbols()
    assert {"SPY", "TLT", "NEE", "NVDA"} <= set(symbols) and len(symbols) == 33
    result = source.fetch(symbols, D(2023, 8, 1), D(2024, 12, 31))
    assert result.failures == {}
    prices = result.prices
    assert tuple(prices.columns) == PRICE_COLUMNS and source.adjusted_only
    assert all(prices[c].dtype == "float64" for c in PRICE_COLUMNS[2:])
    assert prices.groupby("symbol").size().eq(358).all()
    assert all(is_session(d) for d in prices["date"].unique())
    assert (prices["dividend"] == 0).all() and (prices["split_ratio"] == 1).all()
    assert (prices["close"] == prices["adj_close"]).all()
    # Exactly the numbers in the file, read as float64.
    spy = pd.read_csv(REAL_PRICES / "SPY.csv", float_precision="round_trip")
    np.testing.assert_array_equal(prices.loc[prices.symbol == "SPY", "close"].to_numpy(), spy["Close"].to_numpy())


@needs_real
def test_real_directory_window_and_missing_symbol() -> None:
    result = CsvDirectorySource(REAL_PRICES).fetch(["AAPL", "ZZZZ"], D(2024, 1, 1), D(2024, 1, 31))
    assert result.prices["date"].min() == D(2024, 1, 2) and result.prices["date"].max() == D(2024, 1, 31)
    assert len(result.prices) == 21
    assert result.failures["ZZZZ"].startswith("no data file ") and "ZZZZ.csv" in result.failures["ZZZZ"]


def write(path: Path, text: str) -> None:
    path.write_text(text.strip() + "\n")


def test_malformed_files_fail_alone(tmp_path: Path) -> None:
    write(tmp_path / "GOOD.csv", "Date,Close\n2024-01-02,10.5\n2024-01-03,10.75\n2024-01-04,11")
    write(tmp_path / "NODATE.csv", "Day,Close\n2024-01-02,10.5")
    write(tmp_path / "TEXT.csv", "Date,Close\n2024-01-02,10.5\n2024-01-03,n/a")
    write(tmp_path / "DUPE.csv", "Date,Close\n2024-01-02,10.5\n2024-01-02,10.6")
    write(tmp_path / "ZERO.csv", "Date,Close\n2024-01-02,10.5\n2024-01-03,0")
    write(tmp_path / "NOCLOSE.csv", "Date,Open\n2024-01-02,10.5")
    write(tmp_path / "BADDATE.csv", "Date,Close\nyesterday,10.5")
    (tmp_path / "EMPTY.csv").write_text("")
    source = CsvDirectorySource(tmp_path)
    symbols = ["GOOD", "NODATE", "TEXT", "DUPE", "ZERO", "NOCLOSE", "BADDATE", "EMPTY"]
    result = source.fetch(symbols, D(2024, 1, 1), D(2024, 12, 31))
    assert set(result.failures) == set(symbols) - {"GOOD"}
    reasons = result.failures
    assert "no Date column" in reasons["NODATE"]
    assert "non-numeric 'Close'" in reasons["TEXT"] and "n/a" in reasons["TEXT"]
    assert "duplicate date 2024-01-02" in reasons["DUPE"]
    assert "non-positive Close" in reasons["ZERO"]
    assert "'Close'" in reasons["NOCLOSE"] and "unreadable date" in reasons["BADDATE"]
    # Reasons reach API users: the file is named, the server directory is not.
    assert all(f"{s}.csv" in r and str(tmp_path) not in r for s, r in reasons.items())
    assert result.prices["close"].tolist() == [10.5, 10.75, 11.0]
    assert sorted(source.available_symbols()) == sorted(symbols)


def test_yfinance_written_file_prefers_adj_close(tmp_path: Path) -> None:
    write(
        tmp_path / "msft.csv",
        """
Date,Open,High,Low,Close,Adj Close,Volume,Dividends,Stock Splits
2020-08-18 00:00:00-04:00,208.0,212.0,207.0,211.0,205.0,20000000,0.0,0.0
2020-08-19 00:00:00-04:00,211.0,212.5,208.0,209.7,204.227,25000000,0.51,0.0
2020-08-20,,,,,,,0.0,0.0
2020-08-21 00:00:00-04:00,212.0,216.0,211.0,213.0,207.44,36000000,0.0,0.0
""",
    )
    result = CsvDirectorySource(tmp_path).fetch(["MSFT"], D(2020, 8, 18), D(2020, 8, 21))
    assert result.failures == {}
    p = result.prices
    assert p["date"].tolist() == [D(2020, 8, 18), D(2020, 8, 19), D(2020, 8, 21)]  # empty row skipped
    assert p["close"].tolist() == [205.0, 204.227, 207.44] and (p["close"] == p["adj_close"]).all()
    assert (p["dividend"] == 0).all() and (p["split_ratio"] == 1).all()
    assert p["open"].iloc[0] == pytest.approx(208.0 * 205.0 / 211.0)
    assert p["volume"].iloc[1] == 25_000_000.0


def test_missing_directory(tmp_path: Path) -> None:
    source = CsvDirectorySource(tmp_path / "absent")
    assert source.available_symbols() == []
    result = source.fetch(["AAPL"], D(2024, 1, 1), D(2024, 1, 31))
    assert result.prices.empty and "no data file" in result.failures["AAPL"]
