"""Per-symbol parameters: a function of (seed, symbol); listings, delistings and gaps as designed."""

from __future__ import annotations

import datetime as dt

import numpy as np

from symbol_pipeline.lib.sessions import sessions_between
from symbol_pipeline.sources.synthetic import CATALOGUE, ETFS, SyntheticMarket
from symbol_pipeline.sources.synthetic.parameters import symbol_parameters

D = dt.date


def test_parameters_depend_only_on_seed_and_symbol() -> None:
    symbols = ["SYN0001", "AAPL", "SPY", "SYN0042"]
    many = symbol_parameters(3, symbols)
    few = symbol_parameters(3, symbols[2:])
    for field in ("loadings", "idio_sd", "dividend_yield", "first", "last", "anchor_price"):
        np.testing.assert_array_equal(getattr(many, field)[2:], getattr(few, field))
    assert not np.array_equal(symbol_parameters(4, symbols).loadings, many.loadings)


def test_etfs_are_the_factors_themselves() -> None:
    p = symbol_parameters(1, list(ETFS))
    np.testing.assert_array_equal(p.loadings, np.eye(len(ETFS)))
    assert (p.idio_sd == 0).all() and (p.split_rate == 0).all() and (p.category == "etf").all()


def test_late_listing_delisting_and_gaps(market: SyntheticMarket) -> None:
    infos = [market.listing_info(s) for s in market.universe()]
    late = [i for i in infos if i.listed_late]
    gone = [i for i in infos if i.delisted]
    gappy = [i for i in infos if i.has_gaps]
    assert late and gone and gappy and len(late) + len(gone) + len(gappy) < 0.2 * len(infos)
    for s in [*ETFS, *CATALOGUE]:
        info = market.listing_info(s)
        assert not (info.listed_late or info.delisted or info.has_gaps)

    first = late[0]
    rows = market.fetch([first.symbol], first.first_session - dt.timedelta(days=60), first.first_session + dt.timedelta(days=60)).prices
    assert rows["date"].min() == first.first_session
    last = gone[0]
    rows = market.fetch([last.symbol], last.last_session - dt.timedelta(days=60), last.last_session + dt.timedelta(days=60)).prices
    assert rows["date"].max() == last.last_session
    after = market.fetch([last.symbol], last.last_session + dt.timedelta(days=1), last.last_session + dt.timedelta(days=200))
    assert after.prices.empty and after.failures == {}

    gap = gappy[0]
    missing = market.gap_sessions(gap.symbol, D(2023, 1, 1), D(2024, 12, 31))
    assert missing
    have = set(market.fetch([gap.symbol], D(2023, 1, 1), D(2024, 12, 31)).prices["date"])
    assert not have & set(missing)
    assert len(have) + len(missing) == len(sessions_between(D(2023, 1, 1), D(2024, 12, 31))) or gap.delisted or gap.listed_late
