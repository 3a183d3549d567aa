import datetime as dt

import numpy as np
import pandas as pd
import pytest

from symbol_pipeline.lib import stress
from symbol_pipeline.lib.returns import closes_wide, price_anomalies, total_returns, total_returns_array
from symbol_pipeline_tests.calls import python_calls

NAN = np.nan


def _col(values):
    return np.asarray(values, dtype=np.float64)[:, None]


def test_plain_returns_and_first_row_nan():
    close = _col([100.0, 101.0, 99.99])
    r = total_returns_array(close, np.zeros_like(close), np.ones_like(close))
    assert np.isnan(r[0, 0])
    np.testing.assert_allclose(r[1:, 0], [0.01, 99.99 / 101.0 - 1.0], rtol=0, atol=1e-15)


def test_dividend_is_income_not_a_loss():
    # Goes ex a 1.00 dividend: the close drops by the dividend, the holder lost nothing.
    close = _col([100.0, 99.0])
    r = total_returns_array(close, _col([0.0, 1.0]), _col([1.0, 1.0]))
    assert r[1, 0] == pytest.approx(0.0, abs=1e-15)


def test_four_for_one_split_gives_true_return_not_minus_75_percent():
    close = _col([400.0, 101.0])
    r = total_returns_array(close, _col([0.0, 0.0]), _col([1.0, 4.0]))
    assert r[1, 0] == pytest.approx(0.01, abs=1e-15)


def test_nan_dividend_is_zero_and_nan_split_is_one():
    close = _col([50.0, 51.0])
    r = total_returns_array(close, _col([NAN, NAN]), _col([NAN, NAN]))
    assert r[1, 0] == pytest.approx(0.02, abs=1e-15)


def test_gap_makes_both_adjacent_returns_nan_and_none_spans_it():
    close = _col([10.0, 11.0, NAN, 12.0, 13.0])
    r = total_returns_array(close, np.zeros_like(close), np.ones_like(close))
    assert np.isnan(r[[0, 2, 3], 0]).all()
    assert r[1, 0] == pytest.approx(0.1)
    assert r[4, 0] == pytest.approx(13.0 / 12.0 - 1.0)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        total_returns_array(np.ones((3, 2)), np.zeros((3, 1)), np.ones((3, 2)))


@pytest.fixture
def sessions():
    return pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"])


def test_long_prices_pivot_to_the_session_grid(sessions):
    prices = pd.DataFrame(
        [
            # ZZZ listed first to check columns come back sorted; dates as datetime.date.
            ("ZZZ", dt.date(2024, 1, 2), 20.0, 0.0, 1.0),
            ("ZZZ", dt.date(2024, 1, 3), 21.0, 0.0, 1.0),
            ("ZZZ", dt.date(2024, 1, 5), 22.0, 0.0, 1.0),  # 01-04 missing: a gap
            ("ZZZ", dt.date(2024, 1, 8), 22.0, 0.0, 1.0),
            ("AAA", dt.date(2024, 1, 2), 400.0, 0.0, 1.0),
            ("AAA", dt.date(2024, 1, 3), 101.0, 0.0, 4.0),  # 4:1 split
            ("AAA", dt.date(2024, 1, 4), 100.0, 1.0, 1.0),  # ex-dividend
            ("AAA", dt.date(2024, 1, 5), 100.0, NAN, NAN),
            ("AAA", dt.date(2024, 1, 6), 999.0, 0.0, 1.0),  # a Saturday: not a session, dropped
            ("AAA", dt.date(2024, 1, 8), 102.0, 0.0, 1.0),
        ],
        columns=["symbol", "date", "close", "dividend", "split_ratio"],
    )
    r = total_returns(prices, sessions)
    assert list(r.columns) == ["AAA", "ZZZ"]
    assert r.index.equals(sessions)
    np.testing.assert_allclose(r["AAA"].to_numpy()[1:], [0.01, 101.0 / 101.0 - 1.0, 0.0, 0.02], atol=1e-15)
    zzz = r["ZZZ"].to_numpy()
    assert zzz[1] == pytest.approx(0.05)
    assert np.isnan(zzz[[0, 2, 3]]).all()
    assert zzz[4] == 0.0

    closes = closes_wide(prices, sessions)
    assert closes.loc["2024-01-08", "AAA"] == 102.0
    assert np.isnan(closes.loc["2024-01-04", "ZZZ"])
    assert closes.shape == (5, 2)


def test_timestamps_and_missing_action_columns(sessions):
    # An adjusted-close source: no dividend or split columns, Timestamp dates, extra columns ignored.
    prices = pd.DataFrame(
        {
            "symbol": ["X"] * 3,
            "date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]),
            "close": [10.0, 10.5, 10.5],
            "volume": [1, 2, 3],
        }
    )
    r = total_returns(prices, sessions)
    np.testing.assert_allclose(r["X"].to_numpy()[1:3], [0.05, 0.0])
    assert np.isnan(r["X"].to_numpy()[3:]).all()


def test_duplicate_symbol_date_is_an_error(sessions):
    prices = pd.DataFrame(
        {"symbol": ["X", "X"], "date": [dt.date(2024, 1, 2)] * 2, "close": [1.0, 2.0], "dividend": 0.0, "split_ratio": 1.0}
    )
    with pytest.raises(ValueError, match="more than one row"):
        total_returns(prices, sessions)


def _random_prices(sessions: pd.DatetimeIndex, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    symbols = np.array([f"S{i:05d}" for i in range(n)], dtype=object)
    return pd.DataFrame(
        {
            "symbol": np.repeat(symbols, len(sessions)),
            "date": np.tile(np.asarray(sessions.date, dtype=object), n),
            "close": rng.uniform(10, 100, n * len(sessions)),
            "dividend": 0.0,
            "split_ratio": 1.0,
        }
    )


def test_ten_thousand_symbols_pivot_without_a_python_loop_over_symbols():
    # What used to be a 5 s bound: the pivot is array work, so the Python calls it makes do
    # not grow with the symbols (a per-symbol loop, or a pivot on objects, adds calls per symbol).
    sessions = pd.bdate_range("2024-01-01", periods=181)
    few_calls, _ = python_calls(lambda: total_returns(_random_prices(sessions, 100), sessions))
    many = _random_prices(sessions, 10_000)
    many_calls, r = python_calls(lambda: total_returns(many, sessions))
    assert r.shape == (181, 10_000)
    assert r.iloc[1:].notna().all().all()
    assert many_calls <= few_calls + 50, (few_calls, many_calls)


def test_price_anomalies_name_each_kind_of_problem():
    # The session before the first date (2024-03-01) gives the first date its return.
    days = pd.to_datetime(["2024-02-29", "2024-03-01", "2024-03-04"])
    rows = {
        "OK": [100.0, 101.0, 102.0],
        "NEG": [10.0, 10.5, -1.0],
        "REP": [50.0, 51.0, 51.0],
        "JUMP": [20.0, 20.5, 41.0],  # +100%: a split not in the data, say
        "GONE": [30.0, 30.5, NAN],
    }
    prices = pd.DataFrame(
        [(s, d, c, 0.0, 1.0) for s, closes in rows.items() for d, c in zip(days, closes) if not np.isnan(c)],
        columns=["symbol", "date", "close", "dividend", "split_ratio"],
    )
    found = price_anomalies(prices, [*rows, "NEVER"], [dt.date(2024, 3, 1), dt.date(2024, 3, 4)])
    assert found == {
        "non_positive": ["NEG"],
        "repeated": ["REP"],
        "missing": ["GONE", "NEVER"],
        "absurd": ["JUMP", "NEG"],  # NEG: 10.5 -> -1 is a -110% return
    }
    assert price_anomalies(prices, ["OK"], [dt.date(2024, 3, 1)]) == {
        "non_positive": [], "repeated": [], "missing": [], "absurd": [],
    }


def test_stress_etf_returns_are_the_total_returns():
    days = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"])
    prices = pd.DataFrame({"symbol": "SPY", "date": days.date, "close": [100.0, 49.0, 50.0],
                           "dividend": [0.0, 1.0, NAN], "split_ratio": [1.0, 2.0, NAN]})
    expected = total_returns(prices, days).iloc[1:]
    got = stress.etf_returns(prices, days, ["SPY", "TLT"])
    np.testing.assert_array_equal(got["SPY"].to_numpy(), expected["SPY"].to_numpy())
    assert got["TLT"].isna().all()
