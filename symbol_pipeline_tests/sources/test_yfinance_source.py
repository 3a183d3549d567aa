"""The yfinance adapter on recorded frames (see fixtures/README.md); never touches the network."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from symbol_pipeline.lib.sessions import sessions_between
from symbol_pipeline.sources.base import PRICE_COLUMNS
from symbol_pipeline.sources.yfinance_source import NO_DATA, YFinanceSource

D = dt.date
FIXTURES = Path(__file__).resolve().parent / "fixtures"
START, END = D(2020, 7, 27), D(2020, 9, 15)


def recorded(name: str) -> pd.DataFrame:
    return pd.read_pickle(FIXTURES / f"yf_download_{name}.pkl")


class FakeDownload:
    """Returns a recorded frame, after failing `failures` times; records every call."""

    def __init__(self, frame: pd.DataFrame | None, failures: int = 0) -> None:
        self.frame, self.failures, self.calls = frame, failures, []

    def __call__(self, tickers, **kwargs):
        self.calls.append((list(tickers), kwargs))
        if len(self.calls) <= self.failures:
            raise ConnectionError("Yahoo said 429")
        if self.frame is None:
            return None
        # Like yfinance: rows from start to end (exclusive), all of them when end is absent.
        index = pd.DatetimeIndex(self.frame.index).tz_localize(None)
        keep = index >= pd.Timestamp(kwargs.get("start", "1900-01-01"))
        if kwargs.get("end"):
            keep &= index < pd.Timestamp(kwargs["end"])
        return self.frame[keep]


def total_returns(prices: pd.DataFrame) -> pd.Series:
    p = prices.sort_values("date")
    return ((p["close"] + p["dividend"]) * p["split_ratio"] / p["close"].shift(1) - 1).set_axis(p["date"])


@pytest.fixture
def fetched():
    fake = FakeDownload(recorded("group_by_ticker"))
    result = YFinanceSource(download=fake, sleep=lambda s: None).fetch(["AAPL", "MSFT", "SPY", "XYZQ"], START, END)
    return fake, result


def test_call_arguments_and_unknown_ticker(fetched) -> None:
    fake, result = fetched
    assert len(fake.calls) == 1
    tickers, kwargs = fake.calls[0]
    assert tickers == ["AAPL", "MSFT", "SPY", "XYZQ"]
    assert kwargs | {"threads": True} == {
        # No end: the download runs through today so that every later split is in the data
        # (Close is split-adjusted as of today); the rows are cut to [start, end] afterwards.
        "start": "2020-07-27",
        "group_by": "ticker",
        "auto_adjust": False,
        "actions": True,
        "threads": True,
        "progress": False,
    }
    assert result.failures == {"XYZQ": NO_DATA}
    prices = result.prices
    assert tuple(prices.columns) == PRICE_COLUMNS
    assert all(prices[c].dtype == "float64" for c in PRICE_COLUMNS[2:])
    assert prices.groupby("symbol").size().to_dict() == {"AAPL": 36, "MSFT": 36, "SPY": 36}
    assert {t.date() for t in sessions_between(START, END)} == set(prices["date"])


def test_raw_closes_and_actions_reconstructed(fetched) -> None:
    _, result = fetched
    truth = pd.read_csv(FIXTURES / "raw_truth.csv", parse_dates=["date"])
    for symbol in ("AAPL", "MSFT", "SPY"):
        p = result.prices[result.prices.symbol == symbol].reset_index(drop=True)
        t = truth[truth.symbol == symbol].reset_index(drop=True)
        # Yahoo serves float32-rounded prices.
        np.testing.assert_allclose(p["close"], t["Close"], rtol=2e-7)
        np.testing.assert_allclose(p["dividend"], t["Dividends"], rtol=1e-9)
        np.testing.assert_allclose(p["split_ratio"], t["Stock Splits"])
    aapl = result.prices[result.prices.symbol == "AAPL"].set_index("date")
    assert aapl.loc[D(2020, 8, 31), "split_ratio"] == 4.0 and (aapl["split_ratio"] != 1).sum() == 1
    assert aapl.loc[D(2020, 8, 7), "dividend"] == pytest.approx(0.82)  # 0.205 per post-split share
    assert aapl.loc[D(2020, 8, 28), "close"] / aapl.loc[D(2020, 8, 31), "close"] > 3  # the raw close drops


def test_total_returns_match_adj_close(fetched) -> None:
    _, result = fetched
    for symbol in ("AAPL", "MSFT", "SPY"):
        p = result.prices[result.prices.symbol == symbol].sort_values("date")
        ours = total_returns(p).iloc[1:]
        adj = (p["adj_close"] / p["adj_close"].shift(1) - 1).set_axis(p["date"]).iloc[1:]
        ex_date = (p["dividend"] > 0).set_axis(p["date"]).iloc[1:]
        assert np.abs(ours - adj)[~ex_date].max() < 1e-6
        # On an ex-date Yahoo's factor uses close_(t-1) - dividend: second order, about (d/c) * r.
        if ex_date.any():
            assert np.abs(ours - adj)[ex_date].max() < 2e-4
    # Split days are ordinary returns, not -75%.
    aapl = total_returns(result.prices[result.prices.symbol == "AAPL"])
    assert abs(aapl[D(2020, 8, 31)]) < 0.1


@pytest.mark.parametrize("layout", ["group_by_column", "single_flat"])
def test_other_column_layouts_give_the_same_prices(fetched, layout: str) -> None:
    _, expected = fetched
    symbols = ["AAPL"] if layout == "single_flat" else ["AAPL", "MSFT", "SPY", "XYZQ"]
    result = YFinanceSource(download=FakeDownload(recorded(layout))).fetch(symbols, START, END)
    want = expected.prices[expected.prices.symbol.isin(symbols)].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        result.prices.sort_values(["symbol", "date"]).reset_index(drop=True),
        want.sort_values(["symbol", "date"]).reset_index(drop=True),
    )
    assert result.failures == ({} if layout == "single_flat" else {"XYZQ": NO_DATA})


def test_tz_aware_index_and_window(fetched) -> None:
    frame = recorded("group_by_ticker")
    frame.index = frame.index.tz_localize("America/New_York")
    result = YFinanceSource(download=FakeDownload(frame)).fetch(["MSFT"], D(2020, 8, 19), D(2020, 8, 21))
    assert result.prices["date"].tolist() == [D(2020, 8, 19), D(2020, 8, 20), D(2020, 8, 21)]
    assert result.prices["dividend"].iloc[0] == pytest.approx(0.51)


def test_retry_with_exponential_backoff() -> None:
    fake = FakeDownload(recorded("group_by_ticker"), failures=2)
    delays: list[float] = []
    source = YFinanceSource(download=fake, sleep=delays.append, backoff_seconds=1.5)
    result = source.fetch(["MSFT"], START, END)
    assert len(fake.calls) == 3 and delays == [1.5, 3.0]
    assert result.failures == {} and len(result.prices) == 36


def test_retries_exhausted_fail_the_chunk_only() -> None:
    fake = FakeDownload(None, failures=99)
    delays: list[float] = []
    result = YFinanceSource(download=fake, sleep=delays.append, max_attempts=3).fetch(["MSFT", "AAPL"], START, END)
    assert delays == [2.0, 4.0] and len(fake.calls) == 3
    assert set(result.failures) == {"MSFT", "AAPL"} and result.prices.empty
    assert "after 3 attempts" in result.failures["MSFT"] and "429" in result.failures["MSFT"]


def test_chunking() -> None:
    fake = FakeDownload(pd.DataFrame())
    tickers = [f"T{i:03d}" for i in range(150)]
    result = YFinanceSource(download=fake).fetch(tickers, START, END)
    assert [len(t) for t, _ in fake.calls] == [100, 50]
    assert [t for call, _ in fake.calls for t in call] == tickers
    assert result.failures == dict.fromkeys(tickers, NO_DATA)


def test_invalid_symbol_is_a_failure() -> None:
    fake = FakeDownload(recorded("group_by_ticker"))
    result = YFinanceSource(download=fake).fetch(["msft", "bad symbol"], START, END)
    assert fake.calls[0][0] == ["MSFT"] and "bad symbol" in result.failures


def test_a_past_window_is_undone_with_splits_after_it(fetched) -> None:
    """AAPL split 4:1 on 2020-08-31: a window ending before it still gets the raw pre-split closes."""
    fake = FakeDownload(recorded("group_by_ticker"))
    early = YFinanceSource(download=fake, sleep=lambda s: None).fetch(["AAPL"], START, D(2020, 8, 20)).prices
    _, full = fetched
    whole = full.prices[full.prices["symbol"] == "AAPL"].set_index("date")["close"]
    part = early.set_index("date")["close"]
    assert not part.empty and part.index.max() <= D(2020, 8, 20)
    np.testing.assert_allclose(part.to_numpy(), whole.loc[part.index].to_numpy(), rtol=1e-12)
    assert part.iloc[-1] > 400  # raw, pre-split level, not the split-adjusted ~115
