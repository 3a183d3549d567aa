"""The symbol layer's work over dates × symbols, on SQLite and on the real PostgreSQL."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from symbol_pipeline.lib.factors import FACTOR_NAMES, REGRESSOR_ETFS
from symbol_pipeline.services import onboarding, symbol_layer
from symbol_pipeline.sources.base import FetchResult, PriceSource
from symbol_pipeline.sources.synthetic import SyntheticMarket
from symbol_pipeline.storage import betas as beta_store
from symbol_pipeline.storage import universe
from symbol_pipeline.storage.schema import symbol_factor_exposures, symbol_prices_daily

DAY = dt.date(2024, 6, 28)


@pytest.fixture
def market() -> SyntheticMarket:
    return SyntheticMarket(seed=11, n_symbols=60)


def _all_rows(engine, table) -> pd.DataFrame:
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(sa.select(table)).mappings().all())
    return frame.drop(columns=[c for c in ("updated_at", "computed_at") if c in frame]).sort_values(
        [c.name for c in table.primary_key.columns]
    ).reset_index(drop=True)


def _run(engine, source, symbols, dates):
    wanted = list(dict.fromkeys([*symbols, *REGRESSOR_ETFS]))
    symbol_layer.load_prices(engine, source, wanted, dates)
    return symbol_layer.compute_betas(engine, wanted, dates)


def test_true_betas_are_recovered_within_their_standard_errors(engine, market):
    symbols = [s for s in market.universe() if not market.listing_info(s).delisted][:40]
    _run(engine, market, symbols, [DAY])
    with engine.connect() as conn:
        got = beta_store.read_exposures(conn, DAY, symbols, ["market_beta"]).set_index("symbol")
    truth = market.true_betas(symbols)["market_beta"]
    ok = got[got["quality"] == "ok"]
    assert len(ok) >= 35
    z = (ok["beta"] - truth.loc[ok.index]).abs() / ok["std_error"]
    assert (z < 4).mean() >= 0.95, z.describe()
    assert np.corrcoef(ok["beta"], truth.loc[ok.index])[0, 1] > 0.9


def test_rerunning_a_partition_leaves_the_same_rows(engine, market):
    symbols = market.universe()[:15]
    _run(engine, market, symbols, [DAY])
    prices, betas = _all_rows(engine, symbol_prices_daily), _all_rows(engine, symbol_factor_exposures)
    _run(engine, market, symbols, [DAY])
    pd.testing.assert_frame_equal(_all_rows(engine, symbol_prices_daily), prices)
    pd.testing.assert_frame_equal(_all_rows(engine, symbol_factor_exposures), betas)
    assert len(betas) == (len(symbols) + len(REGRESSOR_ETFS)) * len(FACTOR_NAMES)


class _Shifted(PriceSource):
    """The synthetic market with every close after `after` multiplied: later data that differs."""

    name = "synthetic"

    def __init__(self, inner: SyntheticMarket, after: dt.date, factor: float):
        self.inner, self.after, self.factor = inner, after, factor

    def fetch(self, symbols, start, end):
        result = self.inner.fetch(symbols, start, end)
        prices = result.prices.copy()
        later = pd.to_datetime(prices["date"]) > pd.Timestamp(self.after)
        prices.loc[later, "close"] *= self.factor * (1 + 0.3 * np.sin(np.arange(later.sum())))
        return FetchResult(prices, result.failures)


def test_a_price_after_the_date_changes_no_beta_on_the_date(engine, market):
    symbols = market.universe()[:10]
    _run(engine, market, symbols, [DAY])
    with engine.connect() as conn:
        before = beta_store.read_exposures(conn, DAY)
    later = dt.date(2024, 7, 31)
    _run(engine, _Shifted(market, DAY, 1.7), symbols, [later])
    _run(engine, market, symbols, [DAY])  # recomputing D with the later prices stored
    with engine.connect() as conn:
        after = beta_store.read_exposures(conn, DAY)
    cols = ["symbol", "factor", "beta", "beta_uncapped", "alpha", "r_squared", "std_error", "observations", "quality"]
    pd.testing.assert_frame_equal(before[cols], after[cols])


class _Short(PriceSource):
    """Returns fewer rows than asked (a flaky source), never an error."""

    name = "synthetic"

    def __init__(self, inner: SyntheticMarket):
        self.inner = inner

    def fetch(self, symbols, start, end):
        result = self.inner.fetch(symbols, start, end)
        return FetchResult(result.prices.iloc[: len(result.prices) // 3], result.failures)


def test_a_short_refetch_never_deletes_good_rows(engine, market):
    symbols = market.universe()[:5]
    _run(engine, market, symbols, [DAY])
    stored = _all_rows(engine, symbol_prices_daily)
    symbol_layer.load_prices(engine, _Short(market), [*symbols, *REGRESSOR_ETFS], [DAY])
    pd.testing.assert_frame_equal(_all_rows(engine, symbol_prices_daily), stored)


def test_symbols_below_the_minimum_are_recorded_as_insufficient_data(engine, market):
    late = [s for s in market.universe() if market.listing_info(s).listed_late]
    assert late, "the synthetic market should list some symbols late"
    symbol = late[0]
    first = market.listing_info(symbol).first_session
    day = symbol_layer.sessions.session_offset(first, 40)  # 40 returns: enough for 90d minimum 30, not 180d min 60
    _run(engine, market, [symbol], [day])
    with engine.connect() as conn:
        rows = beta_store.read_exposures(conn, day, [symbol]).set_index("factor")
    assert set(rows.index) == set(FACTOR_NAMES)
    assert (rows.loc["market_beta", "quality"]) == "ok"
    spread = rows.loc["spread_momentum"]
    assert spread["quality"] == "insufficient_data"
    assert pd.isna(spread["beta"])
    assert 0 < spread["observations"] < 60


def test_a_symbol_without_a_close_on_the_date_gets_no_fresh_beta(engine, market):
    delisted = [s for s in market.universe() if market.listing_info(s).delisted]
    assert delisted
    symbol = delisted[0]
    last = market.listing_info(symbol).last_session
    day = symbol_layer.sessions.session_offset(last, 5)
    _run(engine, market, [symbol], [day])
    with engine.connect() as conn:
        rows = beta_store.read_exposures(conn, day, [symbol])
    assert len(rows) == len(FACTOR_NAMES)
    assert rows["beta"].isna().all()
    assert set(rows["quality"]) == {"no_price_on_date"}


def test_missing_regressor_is_a_clear_error(engine, market):
    with pytest.raises(symbol_layer.MissingRegressorError, match="SPY"):
        symbol_layer.compute_betas(engine, ["SYN0001"], [DAY])


def test_unknown_symbols_are_recorded_not_raised(engine, market):
    with engine.begin() as conn:
        universe.enqueue_symbols(conn, ["NOSUCH1"], requested_by="test")
    report = symbol_layer.load_prices(engine, market, ["NOSUCH1", "SPY"], [DAY])
    assert "NOSUCH1" in report.failures
    failed = onboarding.fail_pending_without_prices(engine, report.failures)
    assert failed == ["NOSUCH1"]
    with engine.connect() as conn:
        status = universe.symbol_status(conn, "NOSUCH1")
    assert status.status == "error"
    assert "unknown" in status.error_message




def test_a_run_waits_for_another_writing_the_same_date(engine, market):
    """Every writer takes the date's lock: a second run on the same date waits, then writes."""
    import threading

    from symbol_pipeline.storage.locks import date_locks

    symbols = market.universe()[:3]
    _run(engine, market, symbols, [DAY])
    waited: list[str] = []
    waiting = threading.Event()

    def progress(message: str) -> None:
        waited.append(message)
        if message.startswith("waiting for another run"):
            waiting.set()

    # No clock: the worker says it waits, and it is still waiting, whatever the machine's load.
    with date_locks(engine, [DAY]):
        worker = threading.Thread(target=lambda: symbol_layer.compute_betas(engine, symbols, [DAY], progress=progress))
        worker.start()
        assert waiting.wait(60), waited
        assert worker.is_alive(), "compute_betas wrote while another run held the date"
        assert len(waited) == 1  # nothing computed past the lock
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert waited[0] == f"waiting for another run writing {DAY.isoformat()}"
    assert waited[-1].startswith(f"betas: {DAY} done")
