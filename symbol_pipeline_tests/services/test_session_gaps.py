"""Sessions without a price are recorded, so that their partitions count as done, and cleared
when the price arrives; a failed fetch records nothing."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from symbol_pipeline.lib import sessions
from symbol_pipeline.services import symbol_layer
from symbol_pipeline.sources.base import FetchResult, PriceSource
from symbol_pipeline.sources.synthetic import SyntheticMarket
from symbol_pipeline.storage import coverage

DAY = dt.date(2024, 6, 28)


class _Dropping(PriceSource):
    """The synthetic market without some (symbol, date) rows, and failing some symbols."""

    name = "dropping"
    adjusted_only = False

    def __init__(self, market: SyntheticMarket, drop: set[tuple[str, dt.date]], fail: set[str] = frozenset()):
        self.market, self.drop, self.fail = market, drop, set(fail)

    def fetch(self, symbols, start, end) -> FetchResult:
        result = self.market.fetch([s for s in symbols if s not in self.fail], start, end)
        prices = result.prices
        keep = [(s, pd.Timestamp(d).date()) not in self.drop for s, d in zip(prices["symbol"], prices["date"])]
        return FetchResult(prices=prices[keep].reset_index(drop=True),
                           failures={**result.failures, **dict.fromkeys(self.fail, "source down")})


@pytest.fixture
def market() -> SyntheticMarket:
    return SyntheticMarket(seed=11, n_symbols=60)


def _gaps(engine, symbols, start, end) -> dict:
    with engine.connect() as conn:
        frame = coverage.gap_rows(conn, symbols, start, end)
    return {(r.symbol, r.date): r.reason for r in frame.itertuples()}


def test_a_hole_is_recorded_then_cleared_when_its_price_arrives(engine, market):
    hole = sessions.previous_session(DAY)
    source = _Dropping(market, {("SYN0001", hole)}, fail={"SYN0002"})
    report = symbol_layer.load_prices(engine, source, ["SYN0001", "SYN0002", "SYN0003"], [DAY])
    assert _gaps(engine, None, hole, DAY) == {("SYN0001", hole): "gap"}
    assert report.gaps_recorded == 1
    assert set(report.fetched_from) == {"SYN0001", "SYN0003"}  # the failed fetch records nothing
    with engine.connect() as conn:
        keys = coverage.price_keys(conn, ["SYN0002"], hole, DAY)
    assert keys.empty

    # The late price comes: SYN0001 has a hole, so it is fetched again, and the gap goes.
    symbol_layer.load_prices(engine, market, ["SYN0001"], [DAY])
    assert _gaps(engine, None, hole, DAY) == {}


def test_a_delisted_symbol_has_no_price_sessions_after_its_last(engine, market):
    delisted = next(s for s in market.universe() if market.listing_info(s).delisted)
    last = market.listing_info(delisted).last_session
    day = sessions.session_offset(last, 5)
    symbol_layer.load_prices(engine, market, [delisted], [day])
    after = sessions.sessions_between(sessions.session_offset(last, 1), day)
    assert _gaps(engine, [delisted], last, day) == {(delisted, d.date()): "no_price" for d in after}
    with engine.connect() as conn:
        keys = coverage.price_keys(conn, [delisted], last, day)
    assert len(keys) == len(after) + 1  # every session of the span holds a price or a gap
