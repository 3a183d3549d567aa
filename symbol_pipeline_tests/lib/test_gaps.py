"""session_gaps: the sessions without a price, classified by where they fall."""

import datetime as dt

import pandas as pd

from symbol_pipeline.lib.gaps import HOLE, NO_PRICE, NOT_LISTED, session_gaps

DAYS = [dt.date(2024, 6, d) for d in (3, 4, 5, 6, 7)]


def _priced(pairs):
    return pd.DataFrame(pairs, columns=["symbol", "date"])


def test_every_missing_pair_gets_the_reason_of_its_place():
    priced = _priced([("A", DAYS[1]), ("A", DAYS[3]), *[("B", d) for d in DAYS]])
    gaps = session_gaps(priced, ["A", "B", "C"], DAYS)
    got = {(r.symbol, r.date): r.reason for r in gaps.itertuples()}
    assert got == {
        ("A", DAYS[0]): NOT_LISTED, ("A", DAYS[2]): HOLE, ("A", DAYS[4]): NO_PRICE,
        **{("C", d): NO_PRICE for d in DAYS},  # nothing at all: stopped, or not updated yet
    }


def test_pairs_outside_the_grid_are_ignored_and_a_full_grid_has_no_gap():
    priced = _priced([("A", d) for d in DAYS] + [("A", dt.date(2024, 6, 10)), ("Z", DAYS[0])])
    assert session_gaps(priced, ["A"], DAYS).empty
    assert session_gaps(priced, [], DAYS).empty
