"""A portfolio's factor exposures on every session of a range, each on the holdings of that session,
computed for all sessions at once and cached like the point-in-time document.

For every session D the figures are those of the exposures document `as_of=D`: the same holdings
(`holdings.book_from_rows`), the latest close and beta on or before D, the same kernel
(`lib.exposures.aggregate_exposures`, here over a block-diagonal matrix with one row per session).
Betas are null on sessions before any beta is stored, and where the equity of that session is not
positive (the document for that date is an error).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy.engine import Engine

from symbol_pipeline.lib import exposures as exposure_lib
from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.lib.sessions import sessions_between, sessions_ending
from symbol_pipeline.services.portfolio import holdings
from symbol_pipeline.services.portfolio.cache import DEFAULT_CACHE_TTL, lookup_document, write_one
from symbol_pipeline.services.portfolio.documents import iso
from symbol_pipeline.services.portfolio.errors import ValidationError
from symbol_pipeline.services.portfolio.inputs import check_date
from symbol_pipeline.storage.dialect import autocommit
from symbol_pipeline.storage.portfolio import holdings as store
from symbol_pipeline.storage.portfolio.holdings import day_numbers

CACHE_EXPOSURE_HISTORY = "exposure_history"
DEFAULT_SESSIONS = 252
MAX_SESSIONS = 2520  # ten years: a bound on one request's work
CSV_COLUMNS = ["session", "gross_exposure", "net_exposure", *(f"beta_{f}" for f in FACTOR_NAMES),
               *(f"coverage_{f}" for f in FACTOR_NAMES)]


def history_cache_key(version: int, prices_date: Any, betas_date: Any, start: dt.date | None, end: dt.date) -> str:
    """Keyed like the exposures (the version, the dates of the newest closes and betas up to `end`)
    and by the range asked for (no start: the default range, which moves with the first date)."""
    return f"h|v{int(version)}|{iso(prices_date)}|{iso(betas_date)}|{iso(start) or '-'}|{iso(end)}"


def _latest_on_sessions(codes: np.ndarray, days: np.ndarray, values: np.ndarray, n_codes: int,
                        sessions: np.ndarray) -> np.ndarray:
    """Per code and session: the value of the code's latest row on or before the session, NaN if none.

    codes, days, values shape (R,), in any order, (code, day) unique; sessions shape (T,) sorted day
    numbers. Returns shape (n_codes, T). A dense grid rather than a sort of the R rows: each row
    lands on the first session on or after its day (the latest such row per cell wins), then each
    code's row is carried forward over the sessions.
    """
    n_t = len(sessions)
    out = np.full((n_codes, n_t), np.nan)
    slot = np.searchsorted(sessions, days, side="left")  # (R,)
    keep = slot < n_t  # rows after the last session are never used
    cell = codes[keep] * n_t + slot[keep]
    newest = np.full(n_codes * n_t, np.iinfo(np.int64).min)
    np.maximum.at(newest, cell, days[keep])
    winner = days[keep] == newest[cell]
    row = np.full(n_codes * n_t, -1)
    row[cell[winner]] = np.flatnonzero(keep)[winner]
    row = row.reshape(n_codes, n_t)  # the row landing on each cell, -1 for none
    # Carried forward per code: each cell takes the row of the latest filled cell up to it.
    last = np.maximum.accumulate(np.where(row >= 0, np.arange(n_t), -1), axis=1)  # (n_codes, T)
    found = last >= 0
    out[found] = values[row[np.nonzero(found)[0], last[found]]]
    return out


def _compute(pid: str, start: dt.date, end: dt.date, sessions: pd.DatetimeIndex, book: holdings.Book,
             symbols: list[str], closes: pd.DataFrame, betas: pd.DataFrame, first_beta_day: int | None) -> dict[str, Any]:
    """The history document from the holdings on every session and the closes and betas of the
    symbols held (`symbols`: the codes of `closes` and `betas`)."""
    n_t, n_f = len(sessions), len(FACTOR_NAMES)
    s_of_pos = pd.Index(symbols).get_indexer(book.positions["symbol"]).astype(np.int64)  # (P,)
    s_idx, t_idx = s_of_pos[book.p], book.t  # (N,) one entry per session and open position
    days = book.days

    # (session, symbol) pairs held: the matrix columns, each with its close and betas on that session.
    n_s = max(len(symbols), 1)
    pair, pair_of = np.unique(t_idx * n_s + s_idx, return_inverse=True)  # (U,), (N,)
    pair_t, pair_s = pair // n_s, pair % n_s
    # closes and betas come coded by `symbols` (the symbols held) and FACTOR_NAMES
    close = _latest_on_sessions(closes["symbol"].to_numpy(np.int64), closes["day"].to_numpy(np.int64),
                                closes["close"].to_numpy(dtype=float), n_s, days)[pair_s, pair_t]  # (U,)
    b_codes = betas["symbol"].to_numpy(np.int64) * n_f + betas["factor"].to_numpy(np.int64)
    beta = _latest_on_sessions(b_codes, betas["day"].to_numpy(np.int64), betas["beta"].to_numpy(dtype=float),
                               n_s * n_f, days).reshape(n_s, n_f, n_t)[pair_s, :, pair_t]  # (U, F)

    # Market value per (session, position) as the document computes it: close, else entry price.
    entry = book.positions["entry_price"].astype(float).to_numpy()[book.p]  # (N,)
    price = np.where(np.isnan(close[pair_of]), entry, close[pair_of])
    mv = np.nan_to_num(book.quantity * price)
    matrix = exposure_lib.market_value_matrix(t_idx, pair_of, mv, (n_t, len(pair)))
    result = exposure_lib.aggregate_exposures(matrix, beta, book.equity[0])
    factor_beta = result.beta.copy()  # (T, F)
    if first_beta_day is None:
        factor_beta[:] = np.nan
    else:
        factor_beta[days < first_beta_day] = np.nan
    by_factor, coverage = np.ascontiguousarray(factor_beta.T), np.ascontiguousarray(result.coverage.T)  # (F, T)
    return {
        "portfolio_id": pid,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "sessions": np.datetime_as_string(days.astype("datetime64[D]")).tolist(),
        "factors": {f: by_factor[i] for i, f in enumerate(FACTOR_NAMES)},
        "gross_exposure": result.gross_exposure,
        "net_exposure": result.net_exposure,
        "coverage": {f: coverage[i] for i, f in enumerate(FACTOR_NAMES)},
    }


def _resolve_range(start: dt.date | None, end: dt.date | None, first: dt.date | None,
                   pid: str) -> tuple[dt.date, dt.date, pd.DatetimeIndex]:
    end_day = check_date(end, "end")
    if first is None:
        raise holdings.DateOutOfRangeError(f"portfolio {pid} has no history")
    # The rule of `as_of`: a date before the first date is a 422, whichever end of the range it is.
    holdings.check_not_before(end_day, first, pid, "end")
    if start is not None:
        if start > end_day:
            raise ValidationError(f"start {start.isoformat()} is after end {end_day.isoformat()}")
        holdings.check_not_before(start, first, pid, "start")
        start_day = start
    else:
        # partial: near the calendar's first session the default range is the sessions there are.
        start_day = max(sessions_ending(end_day, DEFAULT_SESSIONS, partial=True)[0].date(), first)
    sessions = sessions_between(start_day, end_day)
    if len(sessions) > MAX_SESSIONS:
        raise ValidationError(f"{len(sessions)} sessions from {start_day} to {end_day}; at most {MAX_SESSIONS}")
    return start_day, end_day, sessions


def exposure_history_json(engine: Engine, portfolio_id: Any, start: dt.date | None = None,
                          end: dt.date | None = None, owner_id: int | None = None,
                          ttl: dt.timedelta = DEFAULT_CACHE_TTL, key_hash: str | None = None) -> tuple[bytes, bool]:
    """The history document as JSON bytes (served as is by the API) and whether the cache answered.

    start/end default to the 252 sessions ending today, clipped to the portfolio's first date; a
    start before it, or a date in the future, is a DateOutOfRangeError (a 422). With `key_hash`,
    the caller's key is checked in the cache lookup's round trip (KeyRevokedError).
    """
    end_day = check_date(end, "end")
    with autocommit(engine).connect() as conn:
        pid, head, key, cached = lookup_document(
            conn, portfolio_id, CACHE_EXPOSURE_HISTORY, end_day, owner_id,
            lambda h: history_cache_key(h.version, h.prices_date, h.betas_date, start, end_day), key_hash)
        if cached is not None:
            return cached.encode(), True
        rows = store.holding_rows(conn, [pid])
        equity_rows = store.equity_rows(conn, [pid])
        firsts = [d for d in (equity_rows["effective_date"].min() if len(equity_rows) else None,
                              rows["effective_date"].min() if len(rows) else None) if d is not None]
        start_day, end_day, sessions = _resolve_range(start, end_day, min(firsts) if firsts else None, pid)
        days = day_numbers([d.date() for d in sessions])
        splits = pd.DataFrame(columns=["symbol", "date", "split_ratio"])
        symbols = sorted(set(rows["symbol"]))
        if len(rows) and len(sessions):
            splits = store.split_rows(conn, symbols, rows["effective_date"].min(), end_day)
        book = holdings.book_from_rows([pid], days, rows, equity_rows, splits)
        held = sorted(set(book.positions["symbol"].iloc[np.unique(book.p)])) if len(book.p) else []
        first_session, last_session = (sessions[0].date(), sessions[-1].date()) if len(sessions) else (end_day,) * 2
        closes = store.close_history(conn, held, first_session, last_session)
        betas = store.beta_history(conn, held, first_session, last_session)
        before, after = store.beta_dates_span(conn, first_session, last_session)
    # Sessions before the first stored beta (betas_date of their document is null) get no betas.
    first_beta = days.min(initial=0) if before is not None else None if after is None else day_numbers([after])[0]
    doc = _compute(pid, start_day, end_day, sessions, book, held, closes, betas, first_beta)
    text = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    write_one(engine, pid, CACHE_EXPOSURE_HISTORY, key, text.decode(), ttl)
    return text, False


def exposure_history(engine: Engine, portfolio_id: Any, start: dt.date | None = None, end: dt.date | None = None,
                     owner_id: int | None = None, ttl: dt.timedelta = DEFAULT_CACHE_TTL) -> dict[str, Any]:
    """The history document, decoded (see exposure_history_json)."""
    return orjson.loads(exposure_history_json(engine, portfolio_id, start, end, owner_id, ttl)[0])


def _cell(value: Any) -> str:
    return "" if value is None else repr(float(value))


def exposure_history_csv(doc: dict[str, Any]) -> str:
    """One line per session: session,gross_exposure,net_exposure,beta_<factor>...,coverage_<factor>...
    (full precision; empty where null)."""
    columns = [doc["sessions"], doc["gross_exposure"], doc["net_exposure"],
               *(doc["factors"][f] for f in FACTOR_NAMES), *(doc["coverage"][f] for f in FACTOR_NAMES)]
    lines = [",".join(CSV_COLUMNS)]
    for row in zip(*columns):
        lines.append(",".join([row[0], *map(_cell, row[1:])]))
    return "\n".join(lines) + "\n"
