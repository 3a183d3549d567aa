"""Sessions without a price, and why: the pure half of recording "no data" for a partition."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

NOT_LISTED, NO_PRICE, HOLE = "not_listed", "no_price", "gap"


def session_gaps(priced: pd.DataFrame, symbols: Sequence[str], sessions: Sequence) -> pd.DataFrame:
    """The (symbol, session) pairs of `symbols` × `sessions` with no row in `priced`, with a reason.

    Parameters
    ----------
    priced : DataFrame with columns symbol, date (datetime.date)
        The pairs that have a price; pairs outside symbols × sessions are ignored.
    symbols, sessions : the grid to check (sessions as datetime.date).

    Returns
    -------
    DataFrame (symbol, date, reason): `not_listed` before the symbol's first priced session of
    the grid, `no_price` after its last one (or when it has none: stopped, or not updated yet),
    `gap` between the two.
    """
    days = pd.Index(sorted(set(sessions)))
    names = pd.Index(sorted(set(symbols)))
    if days.empty or names.empty:
        return pd.DataFrame({"symbol": pd.Series(dtype=object), "date": pd.Series(dtype=object),
                             "reason": pd.Series(dtype=object)})
    rows = names.get_indexer(priced["symbol"])
    cols = days.get_indexer(priced["date"])
    keep = (rows >= 0) & (cols >= 0)
    have = np.zeros((len(names), len(days)), dtype=bool)  # (symbols, sessions)
    have[rows[keep], cols[keep]] = True
    position = np.arange(len(days))[None, :]
    any_price = have.any(axis=1)[:, None]
    first = np.where(any_price, have.argmax(axis=1)[:, None], len(days))
    last = np.where(any_price, len(days) - 1 - have[:, ::-1].argmax(axis=1)[:, None], -1)
    reason = np.where(position < first, NOT_LISTED, np.where(position > last, NO_PRICE, HOLE))
    reason = np.where(any_price, reason, NO_PRICE)
    missing_rows, missing_cols = np.nonzero(~have)
    return pd.DataFrame({
        "symbol": names.to_numpy()[missing_rows],
        "date": days.to_numpy()[missing_cols],
        "reason": reason[missing_rows, missing_cols],
    })
