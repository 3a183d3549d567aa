"""Holdings at a date (docs/methodology.md, "Holdings at a date"), for one date or many at once.

The positions open on D are those entered on or before D and not closed on or before D; each has
the quantity of its latest quantity row on or before D, recorded in shares of that row's date and
multiplied by the split ratios effective in (that date, D]; the equity is the portfolio's latest
equity row on or before D (its first row from its first date on). A portfolio's first date is the
earliest date of its equity and quantity rows (its creation is its first equity row's date).

`holdings_as_of` is the one function other code calls for a portfolio's holdings on a date;
`read_book` is the same for many portfolios or many dates, vectorised (no loop over dates).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from symbol_pipeline.services.portfolio.book import parse_portfolio_id, position_doc
from symbol_pipeline.services.portfolio.errors import DateOutOfRangeError, NotFoundError
from symbol_pipeline.services.portfolio.inputs import check_date
from symbol_pipeline.storage.portfolio import book as book_store
from symbol_pipeline.storage.portfolio import holdings as store
from symbol_pipeline.storage.portfolio.holdings import day_numbers

_NAT = np.iinfo(np.int64).min  # what a missing date becomes in day_numbers
_NEVER = np.iinfo(np.int64).max
_SHIFT = 32  # search keys: (group code << 32) + day + 2**31, one sorted int64 array per lookup
_OFFSET = 1 << 31


def check_not_before(day: dt.date, first: dt.date | None, portfolio_id: str, what: str = "as_of") -> None:
    if first is None or day < first:
        since = f"its first date is {first.isoformat()}" if first is not None else "it has no history"
        raise DateOutOfRangeError(f"{what} {day.isoformat()} is before portfolio {portfolio_id} existed ({since})")


@contextlib.contextmanager
def reading(bind: Engine | Connection) -> Iterator[Connection]:
    """A connection from an engine (closed afterwards), or the caller's connection as is."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            yield conn
    else:
        yield bind


def _keys(codes: np.ndarray, days: np.ndarray) -> np.ndarray:
    return (codes.astype(np.int64) << _SHIFT) + (days.astype(np.int64) + _OFFSET)


def latest_on_or_before(codes: np.ndarray, days: np.ndarray, want_codes: np.ndarray,
                         want_days: np.ndarray) -> np.ndarray:
    """For rows sorted by (code, day, tie-breaker): per query (code, day) the index of the last row
    of that code with day <= the query's, or -1. codes, days shape (R,); queries shape (Q,)."""
    keys = _keys(codes, days)
    idx = np.searchsorted(keys, _keys(want_codes, want_days), side="right") - 1
    safe = np.clip(idx, 0, None)
    found = (idx >= 0) & (codes[safe] == want_codes) if len(codes) else np.zeros(len(idx), dtype=bool)
    return np.where(found, idx, -1)


def split_factors(splits: pd.DataFrame, symbols: np.ndarray, after: np.ndarray, until: np.ndarray) -> np.ndarray:
    """Product of the split ratios of each symbol effective in (after, until], shape (N,).

    splits: symbol, date, split_ratio; symbols, after, until shape (N,) (day numbers).
    The product is a ratio of cumulative products per symbol (one sorted search, no loop).
    """
    out = np.ones(len(symbols))
    if len(splits) == 0 or len(symbols) == 0:
        return out
    codes, names = pd.factorize(pd.concat([pd.Series(symbols, dtype=object), splits["symbol"].astype(object)]))
    want, have = codes[: len(symbols)], codes[len(symbols):]
    s_day = day_numbers(splits["date"])
    order = np.lexsort((s_day, have))
    have, s_day = have[order], s_day[order]
    ratio = splits["split_ratio"].to_numpy(dtype=float)[order]
    cum = pd.Series(ratio).groupby(have).cumprod().to_numpy()  # (K,) per-symbol running product

    def cumulative(day: np.ndarray) -> np.ndarray:
        i = latest_on_or_before(have, s_day, want, day)
        return np.where(i >= 0, cum[np.clip(i, 0, None)], 1.0)

    return cumulative(until) / cumulative(after)


@dataclass(frozen=True)
class Book:
    """Some portfolios' holdings on T dates.

    days          : shape (T,), int64 day numbers
    portfolio_ids : Q portfolios; equity shape (Q, T) (NaN before a portfolio's first date);
                    first_day shape (Q,) (_NEVER for a portfolio without rows)
    positions     : one row per position ever held: portfolio_id, position_id, symbol, entry_price
    t, p, quantity: shape (N,), one entry per (date, open position): date index, row of
                    `positions`, quantity in shares of that date
    recorded, recorded_day: shape (N,), the quantity row in force (as recorded) and its date
    """

    days: np.ndarray
    portfolio_ids: list[str]
    equity: np.ndarray
    first_day: np.ndarray
    positions: pd.DataFrame
    t: np.ndarray
    p: np.ndarray
    quantity: np.ndarray
    recorded: np.ndarray
    recorded_day: np.ndarray

    def first_date(self, i: int) -> dt.date | None:
        return None if self.first_day[i] == _NEVER else (np.datetime64(int(self.first_day[i]), "D").item())

    def frame(self, t: int = 0) -> pd.DataFrame:
        """The open positions on date index t: portfolio_id, position_id, symbol, entry_price, quantity,
        recorded_quantity and quantity_day (the row in force and its day number)."""
        on = self.t == t
        rows = self.positions.iloc[self.p[on]].reset_index(drop=True)
        return rows.assign(quantity=self.quantity[on], entry_price=rows["entry_price"].astype(float),
                           recorded_quantity=self.recorded[on], quantity_day=self.recorded_day[on])


def _codes(code_of: dict[str, int], values: pd.Series) -> np.ndarray:
    """code_of[value] per value, shape (N,): one hashed lookup of the whole column (Series.map with
    a dict costs about a millisecond even for a few rows); every value must be a key."""
    found = pd.Index(list(code_of)).get_indexer(values)
    if (found < 0).any():
        raise KeyError(f"not among the portfolios read: {sorted(set(values[found < 0]))[:5]}")
    return np.fromiter(code_of.values(), dtype=np.int64, count=len(code_of))[found]


def _equity_on(rows: pd.DataFrame, pids: Sequence[str], days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(equity (Q, T), first equity day (Q,)) from equity rows: the latest row on or before each day,
    the first row before it."""
    q, n_t = len(pids), len(days)
    code_of = {p: i for i, p in enumerate(pids)}
    codes = _codes(code_of, rows["portfolio_id"].astype(str))
    eff = day_numbers(rows["effective_date"])
    order = np.lexsort((rows["row_id"].to_numpy(dtype=np.int64), eff, codes))
    codes, eff, value = codes[order], eff[order], rows["equity"].to_numpy(dtype=float)[order]
    want = np.repeat(np.arange(q), n_t)
    idx = latest_on_or_before(codes, eff, want, np.tile(days, q))
    first_row = np.full(q, -1)
    if len(codes):
        starts = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
        first_row[codes[starts]] = starts
    idx = np.where(idx >= 0, idx, first_row[want])
    equity = np.where(idx >= 0, value[np.clip(idx, 0, None)] if len(value) else np.nan, np.nan).reshape(q, n_t)
    first_day = np.where(first_row >= 0, eff[np.clip(first_row, 0, None)] if len(eff) else _NEVER, _NEVER)
    return equity, first_day


def book_from_rows(pids: Sequence[str], days: np.ndarray, rows: pd.DataFrame, equity_rows: pd.DataFrame,
                   splits: pd.DataFrame) -> Book:
    """The holdings of `pids` on `days` (int64 day numbers, shape (T,)) from their quantity rows
    (storage HOLDING_COLUMNS), equity rows and the splits of their symbols."""
    pids = list(pids)
    days = np.asarray(days, dtype=np.int64)
    n_t = len(days)
    equity, first_day = _equity_on(equity_rows, pids, days)
    code_of = {p: i for i, p in enumerate(pids)}
    eff = day_numbers(rows["effective_date"])
    pos_codes, _ = pd.factorize(rows["position_id"].to_numpy(dtype=np.int64), sort=True)
    order = np.lexsort((rows["row_id"].to_numpy(dtype=np.int64), eff, pos_codes))
    pos_codes, eff = pos_codes[order].astype(np.int64), eff[order]
    rows = rows.iloc[order].reset_index(drop=True)
    qty = rows["quantity"].to_numpy(dtype=float)
    starts = np.r_[0, np.flatnonzero(np.diff(pos_codes)) + 1] if len(rows) else np.zeros(0, dtype=np.int64)
    positions = rows.iloc[starts][["portfolio_id", "position_id", "symbol", "entry_price"]].reset_index(drop=True)
    positions["portfolio_id"] = positions["portfolio_id"].astype(str)
    # A portfolio's first date is also its earliest position's.
    entry = eff[starts]  # (P,) sorted rows: a position's first row is its entry
    owner = _codes(code_of, positions["portfolio_id"])
    np.minimum.at(first_day, owner, entry)
    exit_day = day_numbers(rows["exit_date"].iloc[starts])
    exit_day = np.where(exit_day == _NAT, _NEVER, exit_day)

    n_p = len(positions)
    want_p = np.repeat(np.arange(n_p), n_t)
    want_t = np.tile(np.arange(n_t), n_p)
    idx = latest_on_or_before(pos_codes, eff, want_p, days[want_t])
    keep = (idx >= 0) & (days[want_t] < exit_day[want_p])
    p, t, r = want_p[keep], want_t[keep], idx[keep]
    factor = split_factors(splits, positions["symbol"].to_numpy(dtype=object)[p], eff[r], days[t])
    equity = np.where(days[None, :] >= first_day[:, None], equity, np.nan)
    return Book(days, pids, equity, first_day, positions, t, p, qty[r] * factor, qty[r], eff[r])


def read_book(conn: Connection, portfolio_ids: Sequence[str] | None, days: Sequence[dt.date]) -> Book:
    """The holdings of these portfolios (all when None) on each of `days`, read in four queries."""
    day_list = list(days)
    # Every row, closed positions too: a closed position may be what makes a portfolio's first date.
    rows = store.holding_rows(conn, portfolio_ids)
    equity_rows = store.equity_rows(conn, portfolio_ids)
    pids = sorted(set(equity_rows["portfolio_id"].astype(str))) if portfolio_ids is None else list(portfolio_ids)
    splits = pd.DataFrame(columns=["symbol", "date", "split_ratio"])
    if len(rows):
        # numpy, not pandas: a date stored before 1677 (a year-1 row from before the rules) is out of
        # pandas' nanosecond range but still a day number.
        since = np.datetime64(int(day_numbers(rows["effective_date"]).min()), "D").item()
        splits = store.split_rows(conn, sorted(set(rows["symbol"])), since, max(day_list))
    return book_from_rows(pids, day_numbers(day_list), rows, equity_rows, splits)


def holdings_as_of(bind: Engine | Connection, portfolio_id: Any, date: dt.date | None = None,
                   owner_id: int | None = None) -> tuple[pd.Series, float]:
    """A portfolio's holdings on `date` (default today): (quantity per symbol, equity).

    The quantities are a float Series indexed by symbol (sorted; positions of a symbol summed), in
    shares of `date` (recorded quantities times the splits since). Raises NotFoundError for a missing
    portfolio (or another owner's when owner_id is given) and DateOutOfRangeError (a 422) for a date
    in the future or before the portfolio's first date.
    """
    pid = parse_portfolio_id(portfolio_id)
    day = check_date(date)
    with reading(bind) as conn:
        if owner_id is not None:
            found = store.portfolio_owner(conn, pid)
            if found is None or found != owner_id:
                raise NotFoundError(f"portfolio {portfolio_id} not found")
        book = read_book(conn, [pid], [day])
    if book.first_day[0] == _NEVER:
        raise NotFoundError(f"portfolio {portfolio_id} not found")
    check_not_before(day, book.first_date(0), pid)
    held = book.frame(0)
    quantities = held.groupby("symbol")["quantity"].sum().sort_index().astype(float)
    quantities.index.name = "symbol"
    return quantities, float(book.equity[0, 0])


def page_of_positions(engine: Engine, portfolio_id: Any, as_of: dt.date | None = None, owner_id: int | None = None,
                      limit: int | None = None, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The positions open on `as_of` (default today), oldest first, each with its quantity on that
    date (`quantity`, in shares of that date after splits) beside the quantity recorded in force
    (`recorded_quantity`, from `quantity_date`); a page of them and how many there are."""
    pid = parse_portfolio_id(portfolio_id)
    day = check_date(as_of)
    with engine.connect() as conn:
        owner = store.portfolio_owner(conn, pid)
        if owner is None or (owner_id is not None and owner != owner_id):
            raise NotFoundError(f"portfolio {portfolio_id} not found")
        book = read_book(conn, [pid], [day])
        check_not_before(day, book.first_date(0), pid)
        held = book.frame(0).sort_values("position_id", kind="stable")
        total = len(held)
        page = held.iloc[offset: None if limit is None else offset + limit]
        rows = {r.id: r for r in book_store.positions_by_id(conn, page["position_id"].tolist())}
    docs = []
    recorded_on = np.datetime_as_string(page["quantity_day"].to_numpy(dtype=np.int64).astype("datetime64[D]")).tolist()
    for position_id, quantity, recorded, since in zip(page["position_id"].tolist(), page["quantity"].tolist(),
                                                      page["recorded_quantity"].tolist(), recorded_on):
        docs.append({**position_doc(rows[position_id]), "quantity": quantity, "recorded_quantity": recorded,
                     "quantity_date": since, "as_of": day.isoformat()})
    return docs, total
