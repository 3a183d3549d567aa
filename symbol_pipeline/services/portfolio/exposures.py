"""Factor exposures of portfolios: many at once in one sparse product (the batch the assets run),
or one through the analytics cache (the API), both as the same JSON document."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from symbol_pipeline.lib import exposures as exposure_lib
from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.services.portfolio import holdings
from symbol_pipeline.services.portfolio.book import parse_portfolio_id
from symbol_pipeline.services.portfolio.cache import (
    CACHE_EXPOSURES,
    DEFAULT_CACHE_TTL,
    exposure_cache_key,
    lookup_exposures,
    write_one,
)
from symbol_pipeline.services.portfolio.documents import dumps, iso, number_texts
from symbol_pipeline.services.portfolio.errors import DateOutOfRangeError, NonPositiveEquityError
from symbol_pipeline.services.portfolio.inputs import check_date
from symbol_pipeline.services.symbols import unavailable_symbols, with_unavailable
from symbol_pipeline.storage import latest
from symbol_pipeline.storage.dialect import autocommit
from symbol_pipeline.storage.portfolio import book, now
from symbol_pipeline.storage.portfolio import cache as cache_store
from symbol_pipeline.storage.portfolio import exposures as store


class _LazyDocuments(Mapping[str, dict[str, Any]]):
    """The exposures documents decoded from their JSON text on access (the batch writes the text)."""

    def __init__(self, texts: Mapping[str, str]):
        self._texts = texts
        self._decoded: dict[str, dict[str, Any]] = {}

    def __getitem__(self, pid: str) -> dict[str, Any]:
        if pid not in self._decoded:
            self._decoded[pid] = json.loads(self._texts[pid])
        return self._decoded[pid]

    def __iter__(self):
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)


@dataclass
class ExposureBatch:
    """Exposures of many portfolios: JSON texts and cache keys of those that could be computed."""

    as_of: dt.date | None
    prices_date: dt.date | None
    betas_date: dt.date | None
    texts: dict[str, str] = field(default_factory=dict)
    cache_keys: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    factor_rows: pd.DataFrame | None = None
    summary_rows: pd.DataFrame | None = None
    _documents: _LazyDocuments | None = field(default=None, init=False, repr=False)

    @property
    def documents(self) -> Mapping[str, dict[str, Any]]:
        """Per portfolio the exposures document, exactly the JSON the API serves, decoded."""
        if self._documents is None:
            self._documents = _LazyDocuments(self.texts)
        return self._documents

    @property
    def portfolio_ids(self) -> list[str]:
        return list(self.texts)


def _market_values(pos: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(market value, unpriced flag) per position: quantity × close, else × entry price (flagged)."""
    close = pos["close"].to_numpy(dtype=float)
    entry = pos["entry_price"].to_numpy(dtype=float)
    qty = pos["quantity"].to_numpy(dtype=float)
    unpriced = np.isnan(close)
    price = np.where(unpriced, entry, close)
    return np.nan_to_num(qty * price), unpriced


def _document_template() -> str:
    """The exposures document with %s slots, keys in the order the API has always served them."""
    factors = ",".join(f'"{name}":{{"beta":%s,"dollar_exposure":%s,"coverage":%s,"missing_symbols":%s}}'
                       for name in FACTOR_NAMES)
    return ('{"portfolio_id":%s,"as_of":%s,"prices_date":%s,"betas_date":%s,"currency":"USD","equity":%s,'
            '"gross_exposure":%s,"net_exposure":%s,"gross_leverage":%s,"net_leverage":%s,"positions":%s,'
            '"factors":{' + factors + '},"missing_symbols":%s,"stale_symbols":%s,"unpriced_symbols":%s,'
            '"computed_at":%s}')


_DOCUMENT_TEMPLATE = _document_template()


def _exposure_documents(pids: Sequence[str], state: Mapping[str, tuple[float, int]], pos: pd.DataFrame,
                        symbols: Sequence[str], betas: np.ndarray, beta_dates: np.ndarray, as_of: dt.date | None,
                        prices_date: dt.date | None, betas_date: dt.date | None, frames: bool = True) -> ExposureBatch:
    """Every portfolio's exposures from positions (with closes) and the symbol betas, as one sparse product.

    state: per portfolio (equity, version)
    pos: portfolio_id, symbol, quantity, entry_price, close (NaN where no close on or before as_of)
    betas, beta_dates: shape (S, F) in the order of `symbols`
    The JSON documents are formatted from the result arrays in one pass (no dict per portfolio).
    frames: also the rows of the snapshot tables (factor_rows, summary_rows), which only the batch stores.
    """
    batch = ExposureBatch(as_of=as_of, prices_date=prices_date, betas_date=betas_date)
    pids = list(pids)
    n_p, n_f = len(pids), len(FACTOR_NAMES)
    p_idx = pd.Index(pids).get_indexer(pos["portfolio_id"]).astype(np.int64)  # pids and symbols are unique
    s_idx = pd.Index(list(symbols)).get_indexer(pos["symbol"]).astype(np.int64)
    mv, unpriced = _market_values(pos)
    eq = np.array([state[p][0] for p in pids], dtype=float)  # (P,)
    matrix = exposure_lib.market_value_matrix(p_idx, s_idx, mv, (n_p, len(symbols)))
    result = exposure_lib.aggregate_exposures(matrix, betas, eq)
    beta, dollar = result.beta, result.dollar_exposure  # (P, F)
    if betas_date is None:  # no betas stored on or before as_of: the exposures are unknown, not zero
        beta, dollar = np.full_like(beta, np.nan), np.full_like(dollar, np.nan)
    counts = np.bincount(p_idx, minlength=n_p)  # (P,)

    # Naming: only the (few) positions with a missing or stale beta, or without a close, are looked at one by one.
    missing = np.isnan(betas)  # (S, F)
    betas_day = np.datetime64(betas_date, "D") if betas_date is not None else np.datetime64("NaT")
    stale_symbol = ((beta_dates < betas_day) & ~missing).any(axis=1)  # (S,)
    flagged = missing.any(axis=1)[s_idx] | stale_symbol[s_idx] | unpriced
    by_portfolio: dict[int, dict[str, Any]] = {}
    rows_k = np.flatnonzero(flagged)
    missing_of = {s: np.flatnonzero(missing[s]).tolist() for s in set(s_idx[rows_k].tolist())}
    stale_of = stale_symbol.tolist()
    for i, s, no_close in zip(p_idx[rows_k].tolist(), s_idx[rows_k].tolist(), unpriced[rows_k].tolist()):
        entry = by_portfolio.setdefault(i, {"missing": {}, "stale": set(), "unpriced": set()})
        symbol = symbols[s]
        for f in missing_of[s]:
            entry["missing"].setdefault(f, set()).add(symbol)
        if stale_of[s]:
            entry["stale"].add(symbol)
        if no_close:
            entry["unpriced"].add(symbol)

    # Symbol lists as JSON text: "[]" except for the flagged portfolios.
    factor_missing = np.full((n_p, n_f), "[]", dtype=object)  # (P, F)
    lists = np.full((n_p, 3), "[]", dtype=object)  # (P, 3): missing (any factor), stale, unpriced
    for i, names in by_portfolio.items():
        for f, found in names["missing"].items():
            factor_missing[i, f] = dumps(sorted(found))
        lists[i, 0] = dumps(sorted(set().union(*names["missing"].values())))
        lists[i, 1] = dumps(sorted(names["stale"]))
        lists[i, 2] = dumps(sorted(names["unpriced"]))

    valid = result.valid
    for i in np.flatnonzero(~valid).tolist():
        batch.errors[pids[i]] = (f"portfolio {pids[i]} has equity {eq[i]:g}; weights (market value / equity) "
                                 "need a positive equity")
    vi = np.flatnonzero(valid)  # rows that get a document
    valid_pids = [pids[i] for i in vi.tolist()]
    with np.errstate(invalid="ignore", divide="ignore"):
        head = number_texts(np.column_stack([
            eq, result.gross_exposure, result.net_exposure, result.gross_exposure / eq, result.net_exposure / eq,
        ])[vi])  # (V, 5)
    per_factor = np.stack([number_texts(beta[vi]), number_texts(dollar[vi]),
                           number_texts(result.coverage[vi]), factor_missing[vi]], axis=2).reshape(len(vi), 4 * n_f)
    constants = (dumps(iso(as_of)), dumps(iso(prices_date)), dumps(iso(betas_date)))
    tail = dumps(now().isoformat())
    template = _DOCUMENT_TEMPLATE
    for row, pid, h, fac, named in zip(vi.tolist(), valid_pids, head.tolist(), per_factor.tolist(),
                                       lists[vi].tolist()):
        batch.texts[pid] = template % ('"' + pid + '"', *constants, *h, int(counts[row]), *fac, *named, tail)
        batch.cache_keys[pid] = exposure_cache_key(state[pid][1], prices_date, betas_date, as_of)

    if not frames:
        return batch
    wide = {"portfolio_id": np.array(valid_pids, dtype=object), "as_of": as_of, "betas_date": betas_date}
    for f, name in enumerate(FACTOR_NAMES):
        wide[f"beta_{name}"] = beta[vi, f]
        wide[f"dollar_exposure_{name}"] = dollar[vi, f]
        wide[f"coverage_{name}"] = result.coverage[vi, f]
    batch.factor_rows = pd.DataFrame(wide)
    errors = np.array([batch.errors.get(p) for p in pids], dtype=object)
    batch.summary_rows = pd.DataFrame({
        "portfolio_id": np.array(pids, dtype=object), "as_of": as_of, "betas_date": betas_date,
        "prices_date": prices_date, "equity": eq, "gross_exposure": result.gross_exposure,
        "net_exposure": result.net_exposure, "positions": counts.astype(np.int64),
        "missing_symbols": lists[:, 0], "stale_symbols": lists[:, 1], "unpriced_symbols": lists[:, 2],
        "error": errors,
    })
    return batch


def _with_closes(conn, pos: pd.DataFrame, as_of: dt.date | None, prices_date: dt.date | None) -> pd.DataFrame:
    """The positions with the latest close on or before as_of of their symbol (NaN where none)."""
    closes = latest.latest_closes(conn, sorted(set(pos["symbol"])), as_of, prices_date)
    at = pd.Index(closes["symbol"]).get_indexer(pos["symbol"])  # one close per symbol
    close = np.where(at >= 0, closes["value"].to_numpy(dtype=float)[np.clip(at, 0, None)] if len(closes) else np.nan,
                     np.nan)
    return pos.assign(close=close,
                      entry_price=pos["entry_price"].astype(float), quantity=pos["quantity"].astype(float))


def compute_portfolio_exposures(engine: Engine, portfolio_ids: Sequence[str] | None = None,
                                as_of: dt.date | None = None, *, store_results: bool = True,
                                ttl: dt.timedelta = DEFAULT_CACHE_TTL) -> ExposureBatch:
    """Exposures of the given portfolios (all when None or empty) on the holdings of as_of (default
    today), in one sparse product.

    With store_results, the snapshot tables and the cache are replaced for those portfolios
    in one transaction. A portfolio with equity <= 0 on that date, or whose first date is after
    it, is reported in `errors`; the rest go on.
    """
    ids = None if not portfolio_ids else sorted({parse_portfolio_id(p) for p in portfolio_ids})
    day = check_date(as_of)
    with engine.begin() as conn:
        prices_date, betas_date = latest.snapshot_dates(conn, as_of)
        versions = book.equity_and_version(conn, ids)
        held = holdings.read_book(conn, sorted(versions) if ids is not None else None, [day])
        errors: dict[str, str] = {}
        state: dict[str, tuple[float, int]] = {}
        for i, pid in enumerate(held.portfolio_ids):
            if pid not in versions:
                continue
            try:
                holdings.check_not_before(day, held.first_date(i), pid)
            except DateOutOfRangeError as exc:
                errors[pid] = str(exc)
                continue
            state[pid] = (float(held.equity[i, 0]), versions[pid][1])
        pids = sorted(state)
        pos = held.frame(0)
        pos = _with_closes(conn, pos[pos["portfolio_id"].isin(state.keys())], as_of, prices_date)
        symbols = sorted(set(pos["symbol"]))
        betas, beta_dates = latest.latest_betas(conn, symbols, as_of, betas_date)
        batch = _exposure_documents(pids, state, pos, symbols, betas, beta_dates, as_of, prices_date, betas_date)
        # Held symbols the pipeline no longer computes (`error`, `delisted`), named per portfolio (issue 9).
        with_unavailable(batch.texts, pos.groupby("portfolio_id")["symbol"].agg(list).to_dict(),
                         unavailable_symbols(conn, symbols))
        batch.errors.update(errors)
        for missing in sorted(set(ids or ()) - set(versions)):
            batch.errors[missing] = f"portfolio {missing} not found"
        if store_results:
            store.write_exposures(conn, ids if ids is not None else None, batch.factor_rows, batch.summary_rows)
            cache_store.write_cache(conn, pd.DataFrame({
                "portfolio_id": np.array(list(batch.texts), dtype=object), "cache_type": CACHE_EXPOSURES,
                "cache_key": np.array([batch.cache_keys[p] for p in batch.texts], dtype=object),
                "data": np.array(list(batch.texts.values()), dtype=object), "valid_until": now() + ttl,
            }), replace_all=ids is None)
    return batch


def exposures_text(engine: Engine, portfolio_id: Any, as_of: dt.date | None, owner_id: int | None,
                   ttl: dt.timedelta, key_hash: str | None = None) -> tuple[str, str, bool]:
    """(JSON document, cache key, cache hit) for one portfolio on the holdings of as_of (default
    today). A hit is one round trip, the check of the caller's key (`key_hash`) included."""
    day = check_date(as_of)
    with autocommit(engine).connect() as conn:
        pid, head, key, cached = lookup_exposures(conn, portfolio_id, as_of, owner_id, key_hash)
        if cached is not None:
            return cached, key, True
        # A miss: the holdings are read after the version, so they are at least that new; a
        # change committed meanwhile bumped the version and the entry written here is never hit.
        held = holdings.read_book(conn, [pid], [day])
        holdings.check_not_before(day, held.first_date(0), pid)
        pos = _with_closes(conn, held.frame(0), as_of, head.prices_date)
        symbols = sorted(set(pos["symbol"]))
        betas, beta_dates = latest.latest_betas(conn, symbols, as_of, head.betas_date)
        unavailable = unavailable_symbols(conn, symbols)  # issue 9, as above
    batch = _exposure_documents([pid], {pid: (float(held.equity[0, 0]), head.version)}, pos, symbols, betas,
                                beta_dates, as_of, head.prices_date, head.betas_date, frames=False)
    with_unavailable(batch.texts, {pid: symbols}, unavailable)
    if pid in batch.errors:
        raise NonPositiveEquityError(batch.errors[pid])
    text = batch.texts[pid]
    write_one(engine, pid, CACHE_EXPOSURES, key, text, ttl)
    return text, key, False


def portfolio_factor_exposures_json(engine: Engine, portfolio_id: Any, as_of: dt.date | None = None,
                                    owner_id: int | None = None, ttl: dt.timedelta = DEFAULT_CACHE_TTL,
                                    key_hash: str | None = None) -> tuple[str, bool]:
    """The exposures document as JSON text (served as is by the API) and whether the cache answered.
    With `key_hash`, the caller's key is checked in the same round trip (KeyRevokedError)."""
    text, _, hit = exposures_text(engine, portfolio_id, as_of, owner_id, ttl, key_hash)
    return text, hit


def get_portfolio_factor_exposures(engine: Engine, portfolio_id: Any, as_of: dt.date | None = None,
                                   owner_id: int | None = None,
                                   ttl: dt.timedelta = DEFAULT_CACHE_TTL) -> dict[str, Any]:
    """A portfolio's factor exposures, from the cache when the positions hash and betas date match."""
    return json.loads(portfolio_factor_exposures_json(engine, portfolio_id, as_of, owner_id, ttl)[0])
