"""The portfolio service: the one module the CLI, the HTTP API and the Dagster assets call.

Users and API keys, portfolios, positions (every change bumps the change log and drops that
portfolio's cached analytics in the same transaction), factor exposures through the
analytics cache, exposures of many portfolios at once, and stress tests.

`owner_id=None` means "no ownership check" (CLI, assets); the API always passes the caller's
id, and a portfolio that belongs to someone else is reported exactly like a missing one.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import os
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from symbol_pipeline.lib import exposures as exposure_lib
from symbol_pipeline.lib import stress as stress_lib
from symbol_pipeline.lib.factors import (
    FACTORS,
    FAMILY_MARKET,
    FAMILY_RATES,
    FAMILY_RIDGE,
    REGRESSOR_ETFS,
)
from symbol_pipeline.lib.sessions import sessions_ending
from symbol_pipeline.lib.symbols import InvalidSymbolError, validate_symbol
from symbol_pipeline.storage import portfolios as store
from symbol_pipeline.storage.universe import (
    STATUS_PENDING,
    enqueue_symbols,
    known_symbols,
)

CACHE_EXPOSURES = "factor_exposures"
CACHE_STRESS = "stress_test"
DEFAULT_CACHE_TTL = dt.timedelta(hours=24)
SUPPORTED_CURRENCIES = ("USD",)
SCENARIOS_FILE_ENV = "SYMBOL_PIPELINE_SCENARIOS_FILE"
_BUILTIN_SCENARIOS = Path(__file__).resolve().parent.parent / "data" / "stress_scenarios.json"
FACTOR_NAMES = tuple(f.name for f in FACTORS)
MAX_NAME_LENGTH = 128
_INVESTMENT_CLASS_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


# --- errors -----------------------------------------------------------------------------------


class ServiceError(Exception):
    """Base of the errors the service raises on purpose; the message is meant for the user."""


class NotFoundError(ServiceError, LookupError):
    """No such portfolio, position or user (or it belongs to someone else)."""


class ValidationError(ServiceError, ValueError):
    """Bad input; nothing was written."""


class NonPositiveEquityError(ValidationError):
    """Weights are market value / equity: undefined when equity is zero or negative."""


class StressDataError(ServiceError, ValueError):
    """Not enough ETF history for the covariance."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    is_admin: bool


# --- small helpers ----------------------------------------------------------------------------


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{what} must be a number, got {value!r}") from None
    value = float(value)
    if not math.isfinite(value):
        raise ValidationError(f"{what} must be a finite number, got {value!r}")
    return value


def _date(value: Any, what: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(f"{what} must be a date in YYYY-MM-DD form, got {value!r}") from None


def _symbol(value: Any) -> str:
    try:
        return validate_symbol(value)
    except InvalidSymbolError as exc:
        raise ValidationError(str(exc)) from None


def _portfolio_id(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        raise NotFoundError(f"portfolio {value!r} not found") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _num(value: float) -> float | None:
    """JSON has no NaN: an undefined figure is null."""
    return None if value is None or not math.isfinite(value) else float(value)


def _dumps(doc: Any) -> str:
    return json.dumps(doc, default=_json_default, separators=(",", ":"))


def _iso(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


# --- users and API keys -----------------------------------------------------------------------


def _hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_user(engine: Engine, name: str, is_admin: bool = False) -> User:
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise ValidationError("user name must be 1 to 64 characters")
    with engine.begin() as conn:
        if store.user_by_name(conn, name) is not None:
            raise ValidationError(f"user {name!r} already exists")
        user_id = store.insert_user(conn, name, is_admin)
    return User(user_id, name, is_admin)


def get_user(engine: Engine, name: str) -> User:
    with engine.connect() as conn:
        row = store.user_by_name(conn, name)
    if row is None:
        raise NotFoundError(f"user {name!r} not found")
    return User(row.id, row.name, row.is_admin)


def issue_api_key(engine: Engine, user_name: str) -> str:
    """A new key for the user. Returned once; only its SHA-256 is stored."""
    user = get_user(engine, user_name)
    api_key = "sp_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        store.insert_api_key(conn, user.id, _hash_key(api_key), api_key[:11])
    return api_key


def revoke_api_key(engine: Engine, api_key: str | None = None, *, prefix: str | None = None,
                   user_name: str | None = None) -> int:
    """Revoke a key (given whole or by its first 11 characters), or every key of a user."""
    if not (api_key or prefix or user_name):
        raise ValidationError("name the key, its prefix or the user")
    user_id = get_user(engine, user_name).id if user_name else None
    with engine.begin() as conn:
        count = store.revoke_api_keys(
            conn, key_hash=_hash_key(api_key) if api_key else None, key_prefix=prefix, user_id=user_id
        )
    clear_auth_cache()
    if count == 0:
        raise NotFoundError("no matching active API key")
    return count


# Accepted keys are remembered for a few seconds per process: the lookup was a round trip on
# every request. A revocation through this process clears the memory at once; one made by
# another process (the CLI while the API runs) takes effect within AUTH_CACHE_SECONDS.
AUTH_CACHE_SECONDS = float(os.environ.get("SYMBOL_PIPELINE_AUTH_CACHE_SECONDS", "5"))
_AUTH_CACHE_MAX = 10_000
_auth_cache: dict[str, tuple[float, User]] = {}


def clear_auth_cache() -> None:
    _auth_cache.clear()


def remembered_user(api_key: str | None) -> User | None:
    """The user of a key accepted less than AUTH_CACHE_SECONDS ago by this process, without I/O
    (None: not remembered, ask authenticate())."""
    if not api_key:
        return None
    found = _auth_cache.get(_hash_key(api_key))
    return found[1] if found is not None and found[0] > time.monotonic() else None


def authenticate(engine: Engine, api_key: str | None) -> User | None:
    """The user holding this unrevoked key, or None. Rejections are never remembered."""
    if not api_key:
        return None
    key_hash = _hash_key(api_key)
    found = _auth_cache.get(key_hash)
    if found is not None and found[0] > time.monotonic():
        return found[1]
    with store.autocommit(engine).connect() as conn:
        row = store.user_for_key_hash(conn, key_hash)
    if row is None:
        _auth_cache.pop(key_hash, None)
        return None
    user = User(row.id, row.name, bool(row.is_admin))
    if AUTH_CACHE_SECONDS > 0:
        if len(_auth_cache) >= _AUTH_CACHE_MAX:
            _auth_cache.clear()
        _auth_cache[key_hash] = (time.monotonic() + AUTH_CACHE_SECONDS, user)
    return user


# --- portfolios -------------------------------------------------------------------------------


def _portfolio_doc(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "owner_id": row.owner_id,
        "name": row.name,
        "equity": row.equity,
        "currency": row.currency,
        "created_at": _iso(row.created_at),
    }


def _owned_portfolio(conn: Connection, portfolio_id: Any, owner_id: int | None):
    pid = _portfolio_id(portfolio_id)
    row = store.portfolio_row(conn, pid)
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        raise NotFoundError(f"portfolio {portfolio_id} not found")
    return row


def create_portfolio(engine: Engine, owner_id: int, name: str, equity: Any, currency: str = "USD") -> dict[str, Any]:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"portfolio name must be 1 to {MAX_NAME_LENGTH} characters")
    equity = _finite(equity, "equity")
    if equity <= 0:
        raise NonPositiveEquityError(f"equity must be positive, got {equity}")
    if currency not in SUPPORTED_CURRENCIES:
        raise ValidationError(f"currency {currency!r} is not supported; only {', '.join(SUPPORTED_CURRENCIES)}")
    pid = str(uuid.uuid4())
    with engine.begin() as conn:
        store.insert_portfolio(conn, pid, owner_id, name, equity, currency)
        store.record_change(conn, pid, "portfolio_created")
        row = store.portfolio_row(conn, pid)
    return _portfolio_doc(row)


def get_portfolio(engine: Engine, portfolio_id: Any, owner_id: int | None = None) -> dict[str, Any]:
    with engine.connect() as conn:
        return _portfolio_doc(_owned_portfolio(conn, portfolio_id, owner_id))


def list_portfolios(engine: Engine, owner_id: int | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [_portfolio_doc(r) for r in store.list_portfolios(conn, owner_id)]


def set_equity(engine: Engine, portfolio_id: Any, equity: Any, owner_id: int | None = None) -> dict[str, Any]:
    """Record the portfolio's equity balance (it may be zero or negative after losses)."""
    equity = _finite(equity, "equity")
    with engine.begin() as conn:
        row = _owned_portfolio(conn, portfolio_id, owner_id)
        store.update_portfolio(conn, row.id, equity=equity)
        _changed(conn, row.id, "equity_updated")
        return _portfolio_doc(store.portfolio_row(conn, row.id))


def _changed(conn: Connection, portfolio_id: str, kind: str) -> None:
    """Log the change for the sensor, bump the portfolio's version and drop its cached analytics,
    in the caller's transaction."""
    store.record_change(conn, portfolio_id, kind)
    store.bump_version(conn, portfolio_id)
    store.delete_cache(conn, portfolio_id)


# --- positions --------------------------------------------------------------------------------


def _position_doc(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "portfolio_id": row.portfolio_id,
        "symbol": row.symbol,
        "quantity": row.quantity,
        "entry_price": row.entry_price,
        "entry_date": _iso(row.entry_date),
        "exit_date": _iso(row.exit_date),
        "exit_price": row.exit_price,
        "investment_class": row.investment_class,
    }


def _clean_position(raw: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    prefix = f"{where}: " if where else ""
    unknown = set(raw) - {"symbol", "quantity", "entry_price", "entry_date", "investment_class"}
    if unknown:
        raise ValidationError(f"{prefix}unknown fields {sorted(unknown)}")
    try:
        if "symbol" not in raw or "quantity" not in raw:
            raise ValidationError("symbol and quantity are required")
        quantity = _finite(raw["quantity"], "quantity")
        if quantity == 0:
            raise ValidationError("quantity must not be zero (shorts are negative)")
        entry_price = raw.get("entry_price")
        if entry_price is not None and entry_price != "":
            entry_price = _finite(entry_price, "entry_price")
            if entry_price <= 0:
                raise ValidationError(f"entry_price must be positive, got {entry_price}")
        else:
            entry_price = None
        investment_class = (raw.get("investment_class") or "equity")
        if (not isinstance(investment_class, str) or len(investment_class) > 32
                or not set(investment_class.lower()) <= _INVESTMENT_CLASS_CHARS):
            raise ValidationError("investment_class must be up to 32 letters, digits, _ or -")
        return {
            "symbol": _symbol(raw["symbol"]),
            "quantity": quantity,
            "entry_price": entry_price,
            "entry_date": _date(raw.get("entry_date"), "entry_date"),
            "investment_class": investment_class.lower(),
        }
    except ValidationError as exc:
        raise ValidationError(f"{prefix}{exc}") from None


def _pending(conn: Connection, symbols: Sequence[str], requested_by: str) -> list[str]:
    """Queue symbols the universe does not know; return every one of them not yet ready."""
    symbols = list(dict.fromkeys(symbols))
    before = known_symbols(conn, symbols)
    queued = set(enqueue_symbols(conn, symbols, requested_by=requested_by, priority=1))
    return [s for s in symbols if s in queued or before.get(s) == STATUS_PENDING]


def add_positions(engine: Engine, portfolio_id: Any, rows: Sequence[Mapping[str, Any]],
                  owner_id: int | None = None, requested_by: str = "service") -> dict[str, Any]:
    """Add positions (all or none). Returns {"positions": [...], "pending_symbols": [...]}."""
    cleaned = [_clean_position(r, f"row {i + 1}" if len(rows) > 1 else "") for i, r in enumerate(rows)]
    if not cleaned:
        raise ValidationError("no positions given")
    with engine.begin() as conn:
        portfolio = _owned_portfolio(conn, portfolio_id, owner_id)
        ids = store.insert_positions(conn, [{"portfolio_id": portfolio.id, **r} for r in cleaned])
        pending = _pending(conn, [r["symbol"] for r in cleaned], requested_by)
        _changed(conn, portfolio.id, "positions_added")
        docs = [_position_doc(store.position_row(conn, i)) for i in ids]
    return {"positions": docs, "pending_symbols": pending}


def add_position(engine: Engine, portfolio_id: Any, symbol: Any, quantity: Any, entry_price: Any = None,
                 entry_date: Any = None, investment_class: str = "equity", owner_id: int | None = None,
                 requested_by: str = "service") -> dict[str, Any]:
    """Add one position. Returns {"position": {...}, "pending_symbols": [...]}."""
    row = {"symbol": symbol, "quantity": quantity, "entry_price": entry_price, "entry_date": entry_date,
           "investment_class": investment_class}
    result = add_positions(engine, portfolio_id, [row], owner_id=owner_id, requested_by=requested_by)
    return {"position": result["positions"][0], "pending_symbols": result["pending_symbols"]}


def _owned_position(conn: Connection, position_id: Any, owner_id: int | None):
    try:
        pid = int(position_id)
    except (TypeError, ValueError):
        raise NotFoundError(f"position {position_id!r} not found") from None
    row = store.position_row(conn, pid)
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        raise NotFoundError(f"position {position_id} not found")
    return row


def update_position(engine: Engine, position_id: Any, owner_id: int | None = None, **changes: Any) -> dict[str, Any]:
    """Change quantity, entry_price, entry_date or investment_class of an open position."""
    allowed = {"quantity", "entry_price", "entry_date", "investment_class"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(f"unknown fields {sorted(unknown)}")
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise ValidationError("nothing to update")
    with engine.begin() as conn:
        row = _owned_position(conn, position_id, owner_id)
        if row.exit_date is not None:
            raise ValidationError(f"position {row.id} is closed")
        merged = {"symbol": row.symbol, "quantity": row.quantity, "entry_price": row.entry_price,
                  "entry_date": row.entry_date, "investment_class": row.investment_class, **changes}
        cleaned = _clean_position(merged)
        store.update_position(conn, row.id, **{k: cleaned[k] for k in changes})
        _changed(conn, row.portfolio_id, "position_updated")
        return _position_doc(store.position_row(conn, row.id))


def close_position(engine: Engine, position_id: Any, exit_date: Any = None, exit_price: Any = None,
                   owner_id: int | None = None) -> dict[str, Any]:
    exit_day = _date(exit_date, "exit_date") or dt.date.today()
    price = None if exit_price in (None, "") else _finite(exit_price, "exit_price")
    if price is not None and price <= 0:
        raise ValidationError(f"exit_price must be positive, got {price}")
    with engine.begin() as conn:
        row = _owned_position(conn, position_id, owner_id)
        if row.exit_date is not None:
            raise ValidationError(f"position {row.id} is already closed (on {row.exit_date})")
        if row.entry_date is not None and exit_day < row.entry_date:
            raise ValidationError(f"exit_date {exit_day} is before entry_date {row.entry_date}")
        store.update_position(conn, row.id, exit_date=exit_day, exit_price=price)
        _changed(conn, row.portfolio_id, "position_closed")
        return _position_doc(store.position_row(conn, row.id))


def import_positions_csv(engine: Engine, portfolio_id: Any, text: str, owner_id: int | None = None,
                         requested_by: str = "import") -> dict[str, Any]:
    """Add every row of a CSV with header symbol,quantity[,entry_price,entry_date,investment_class]."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"symbol", "quantity"} <= {f.strip() for f in reader.fieldnames}:
        raise ValidationError("CSV needs a header with at least the columns symbol,quantity")
    rows = []
    for row in reader:
        if None in row:
            raise ValidationError(f"CSV line {reader.line_num}: more fields than the header")
        rows.append({k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()
                     if v not in (None, "") or k.strip() in ("symbol", "quantity")})
    return add_positions(engine, portfolio_id, rows, owner_id=owner_id, requested_by=requested_by)


def list_positions(engine: Engine, portfolio_id: Any, include_closed: bool = False,
                   owner_id: int | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        portfolio = _owned_portfolio(conn, portfolio_id, owner_id)
        return [_position_doc(r) for r in store.list_positions(conn, portfolio.id, include_closed)]


# --- exposures --------------------------------------------------------------------------------


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


def exposure_cache_key(version: int, prices_date: Any, betas_date: Any, as_of: Any) -> str:
    """The exposures cache key: the portfolio's version (bumped by every position or equity change in
    the change's transaction) and the dates of the closes and betas the figures come from."""
    return f"v{int(version)}|{_iso(prices_date)}|{_iso(betas_date)}|{_iso(as_of) or 'latest'}"


def _json_numbers(values: np.ndarray) -> np.ndarray:
    """Floats as JSON number text (what json.dumps writes: repr), non-finite as null; same shape, object dtype."""
    values = np.asarray(values, dtype=float)
    out = np.array(list(map(repr, values.ravel().tolist())) or [], dtype=object)
    out[~np.isfinite(values.ravel())] = "null"
    return out.reshape(values.shape)


def _document_template() -> str:
    """The exposures document with %s slots, keys in the order the API has always served them."""
    factors = ",".join(f'"{name}":{{"beta":%s,"dollar_exposure":%s,"coverage":%s,"missing_symbols":%s}}'
                       for name in FACTOR_NAMES)
    return ('{"portfolio_id":%s,"as_of":%s,"prices_date":%s,"betas_date":%s,"currency":"USD","equity":%s,'
            '"gross_exposure":%s,"net_exposure":%s,"gross_leverage":%s,"net_leverage":%s,"positions":%s,'
            '"factors":{' + factors + '},"missing_symbols":%s,"stale_symbols":%s,"unpriced_symbols":%s,'
            '"computed_at":%s}')


_DOCUMENT_TEMPLATE = _document_template()


def _assemble(pids: Sequence[str], state: Mapping[str, tuple[float, int]], pos: pd.DataFrame,
              symbols: Sequence[str], betas: np.ndarray, beta_dates: np.ndarray, as_of: dt.date | None,
              prices_date: dt.date | None, betas_date: dt.date | None) -> ExposureBatch:
    """Every portfolio's exposures from positions (with closes) and the symbol betas, as one sparse product.

    state: per portfolio (equity, version)
    pos: portfolio_id, symbol, quantity, entry_price, close (NaN where no close on or before as_of)
    betas, beta_dates: shape (S, F) in the order of `symbols`
    The JSON documents are formatted from the result arrays in one pass (no dict per portfolio).
    """
    batch = ExposureBatch(as_of=as_of, prices_date=prices_date, betas_date=betas_date)
    pids = list(pids)
    n_p, n_f = len(pids), len(FACTOR_NAMES)
    row_of = {p: i for i, p in enumerate(pids)}
    col_of = {s: i for i, s in enumerate(symbols)}
    p_idx = pos["portfolio_id"].map(row_of).to_numpy(dtype=np.int64)
    s_idx = pos["symbol"].map(col_of).to_numpy(dtype=np.int64)
    mv, unpriced = _market_values(pos)
    eq = np.array([state[p][0] for p in pids], dtype=float)  # (P,)
    matrix = exposure_lib.market_value_matrix(p_idx, s_idx, mv, (n_p, len(symbols)))
    result = exposure_lib.aggregate_exposures(matrix, betas, eq)
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
            factor_missing[i, f] = _dumps(sorted(found))
        lists[i, 0] = _dumps(sorted(set().union(*names["missing"].values())))
        lists[i, 1] = _dumps(sorted(names["stale"]))
        lists[i, 2] = _dumps(sorted(names["unpriced"]))

    valid = result.valid
    for i in np.flatnonzero(~valid).tolist():
        batch.errors[pids[i]] = (f"portfolio {pids[i]} has equity {eq[i]:g}; weights (market value / equity) "
                                 "need a positive equity")
    vi = np.flatnonzero(valid)  # rows that get a document
    valid_pids = [pids[i] for i in vi.tolist()]
    with np.errstate(invalid="ignore", divide="ignore"):
        head = _json_numbers(np.column_stack([
            eq, result.gross_exposure, result.net_exposure, result.gross_exposure / eq, result.net_exposure / eq,
        ])[vi])  # (V, 5)
    per_factor = np.stack([_json_numbers(result.beta[vi]), _json_numbers(result.dollar_exposure[vi]),
                           _json_numbers(result.coverage[vi]), factor_missing[vi]], axis=2).reshape(len(vi), 4 * n_f)
    computed_at = store.now().isoformat()
    constants = (_dumps(_iso(as_of)), _dumps(_iso(prices_date)), _dumps(_iso(betas_date)))
    tail = _dumps(computed_at)
    template = _DOCUMENT_TEMPLATE
    for row, pid, h, fac, named in zip(vi.tolist(), valid_pids, head.tolist(), per_factor.tolist(),
                                       lists[vi].tolist()):
        batch.texts[pid] = template % ('"' + pid + '"', *constants, *h, int(counts[row]), *fac, *named, tail)
        batch.cache_keys[pid] = exposure_cache_key(state[pid][1], prices_date, betas_date, as_of)

    wide = {"portfolio_id": np.array(valid_pids, dtype=object), "as_of": as_of, "betas_date": betas_date}
    for f, name in enumerate(FACTOR_NAMES):
        wide[f"beta_{name}"] = result.beta[vi, f]
        wide[f"dollar_exposure_{name}"] = result.dollar_exposure[vi, f]
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


def compute_portfolio_exposures(engine: Engine, portfolio_ids: Sequence[str] | None = None,
                                as_of: dt.date | None = None, *, store_results: bool = True,
                                ttl: dt.timedelta = DEFAULT_CACHE_TTL) -> ExposureBatch:
    """Exposures of the given portfolios (all when None or empty) in one sparse product.

    With store_results, the snapshot tables and the cache are replaced for those portfolios
    in one transaction. A portfolio with equity <= 0 is reported in `errors`, the rest go on.
    """
    ids = None if not portfolio_ids else sorted({_portfolio_id(p) for p in portfolio_ids})
    with engine.begin() as conn:
        prices_date, betas_date = store.snapshot_dates(conn, as_of)
        state = store.equity_and_version(conn, ids)
        pids = sorted(state)
        pos = store.open_positions_frame(conn, pids if ids is not None else None)
        pos = pos[pos["portfolio_id"].isin(state.keys())] if ids is None else pos
        symbols = sorted(set(pos["symbol"]))
        closes = store.latest_closes(conn, symbols, as_of, prices_date)
        close_of = dict(zip(closes["symbol"], closes["value"].astype(float)))
        pos = pos.assign(close=pos["symbol"].map(close_of).astype(float),
                         entry_price=pos["entry_price"].astype(float), quantity=pos["quantity"].astype(float))
        betas, beta_dates = store.latest_betas(conn, symbols, as_of, betas_date)
        batch = _assemble(pids, state, pos, symbols, betas, beta_dates, as_of, prices_date, betas_date)
        for missing in sorted(set(ids or ()) - set(pids)):
            batch.errors[missing] = f"portfolio {missing} not found"
        if store_results:
            store.write_exposures(conn, ids if ids is not None else None, batch.factor_rows, batch.summary_rows)
            until = store.now() + ttl
            store.write_cache(conn, pd.DataFrame({
                "portfolio_id": np.array(list(batch.texts), dtype=object), "cache_type": CACHE_EXPOSURES,
                "cache_key": np.array([batch.cache_keys[p] for p in batch.texts], dtype=object),
                "data": np.array(list(batch.texts.values()), dtype=object), "valid_until": until,
            }), replace_all=ids is None)
    return batch


def _cache_lookup(conn: Connection, portfolio_id: Any, as_of: dt.date | None, owner_id: int | None):
    """(portfolio id, first row, cache key, cached JSON or None) in one round trip; raises for a
    portfolio that is missing, someone else's or without positive equity."""
    pid = _portfolio_id(portfolio_id)
    rows = store.cached_document(conn, pid, CACHE_EXPOSURES, as_of, store.now())
    if not rows or (owner_id is not None and rows[0].owner_id != owner_id):
        raise NotFoundError(f"portfolio {portfolio_id} not found")
    head = rows[0]
    if not head.equity > 0:
        raise NonPositiveEquityError(
            f"portfolio {pid} has equity {head.equity:g}; weights (market value / equity) need a positive equity"
        )
    key = exposure_cache_key(head.version, head.prices_date, head.betas_date, as_of)
    cached = next((row.data for row in rows if row.cache_key == key), None)
    return pid, head, key, cached


def _exposures(engine: Engine, portfolio_id: Any, as_of: dt.date | None, owner_id: int | None,
               ttl: dt.timedelta) -> tuple[str, str, bool]:
    """(JSON document, cache key, cache hit) for one portfolio. A hit is one round trip."""
    with store.autocommit(engine).connect() as conn:
        pid, head, key, cached = _cache_lookup(conn, portfolio_id, as_of, owner_id)
        if cached is not None:
            return cached, key, True
        # A miss: the positions are read after the version, so they are at least that new; a
        # change committed meanwhile bumped the version and the entry written here is never hit.
        snap = store.portfolio_positions_snapshot(conn, pid, as_of)
        if not snap:
            raise NotFoundError(f"portfolio {portfolio_id} not found")
        held = [r for r in snap if r.symbol is not None]
        closes = [r.close for r in held]
        if any(c is None for c in closes):
            older = store.latest_closes(conn, sorted({r.symbol for r in held if r.close is None}), as_of,
                                        head.prices_date)
            fill = dict(zip(older["symbol"], older["value"].astype(float)))
            closes = [c if c is not None else fill.get(r.symbol) for c, r in zip(closes, held)]
        pos = pd.DataFrame({
            "portfolio_id": pid, "symbol": [r.symbol for r in held],
            "quantity": np.array([r.quantity for r in held], dtype=float),
            "entry_price": np.array([np.nan if r.entry_price is None else r.entry_price for r in held], dtype=float),
            "close": np.array([np.nan if c is None else c for c in closes], dtype=float),
        })
        symbols = sorted(set(pos["symbol"]))
        betas, beta_dates = store.latest_betas(conn, symbols, as_of, head.betas_date)
    batch = _assemble([pid], {pid: (snap[0].equity, head.version)}, pos, symbols, betas, beta_dates, as_of,
                      head.prices_date, head.betas_date)
    if pid in batch.errors:  # equity changed to <= 0 between the two reads
        raise NonPositiveEquityError(batch.errors[pid])
    text = batch.texts[pid]
    with engine.begin() as conn:
        store.write_cache(conn, [{"portfolio_id": pid, "cache_type": CACHE_EXPOSURES, "cache_key": key,
                                  "data": text, "valid_until": store.now() + ttl}])
    return text, key, False


def portfolio_factor_exposures_json(engine: Engine, portfolio_id: Any, as_of: dt.date | None = None,
                                    owner_id: int | None = None,
                                    ttl: dt.timedelta = DEFAULT_CACHE_TTL) -> tuple[str, bool]:
    """The exposures document as JSON text (served as is by the API) and whether the cache answered."""
    text, _, hit = _exposures(engine, portfolio_id, as_of, owner_id, ttl)
    return text, hit


def get_portfolio_factor_exposures(engine: Engine, portfolio_id: Any, as_of: dt.date | None = None,
                                   owner_id: int | None = None,
                                   ttl: dt.timedelta = DEFAULT_CACHE_TTL) -> dict[str, Any]:
    """A portfolio's factor exposures, from the cache when the positions hash and betas date match."""
    return json.loads(portfolio_factor_exposures_json(engine, portfolio_id, as_of, owner_id, ttl)[0])


def invalidate_portfolio_cache(engine: Engine, portfolio_id: Any) -> int:
    with engine.begin() as conn:
        return store.delete_cache(conn, _portfolio_id(portfolio_id))


def invalidate_all_caches(engine: Engine) -> int:
    """Drop every cached analytics entry: call after the daily symbol run has written new betas."""
    with engine.begin() as conn:
        return store.delete_cache(conn)


def changes_after(engine: Engine, cursor: int, limit: int = 100_000) -> list[tuple[int, str, str]]:
    """The change log after `cursor`: (id, portfolio_id, kind), oldest first."""
    with engine.connect() as conn:
        return [(r.id, r.portfolio_id, r.kind) for r in store.changes_after(conn, cursor, limit)]


# --- stress tests -----------------------------------------------------------------------------


def _legs() -> list[stress_lib.FactorLeg]:
    legs = []
    for f in FACTORS:
        if f.family == FAMILY_MARKET:
            legs.append(stress_lib.FactorLeg(f.name, "market", ((f.regressors[0], 1.0),)))
        elif f.family == FAMILY_RATES:
            legs.append(stress_lib.FactorLeg(f.name, "rates", ((f.regressors[0], 1.0),)))
        elif f.family == FAMILY_RIDGE:
            legs.append(stress_lib.FactorLeg(f.name, "style", ((f.regressors[0], 1.0),)))
        else:
            long, short = f.regressors
            legs.append(stress_lib.FactorLeg(f.name, "spread", ((long, 1.0), (short, -1.0))))
    return legs


FACTOR_LEGS = _legs()


def load_scenarios(path: str | os.PathLike | None = None) -> list[stress_lib.Scenario]:
    """The built-in scenarios, extended (or overridden by name) by `path` or $SYMBOL_PIPELINE_SCENARIOS_FILE."""
    extra = path or os.environ.get(SCENARIOS_FILE_ENV)
    return list(_load_scenarios(str(extra) if extra else None))


@lru_cache(maxsize=8)
def _load_scenarios(extra: str | None) -> tuple[stress_lib.Scenario, ...]:
    def read(p: Path) -> list[stress_lib.Scenario]:
        try:
            doc = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidationError(f"cannot read scenarios file {p}: {exc}") from None
        try:
            return stress_lib.parse_scenarios(doc, REGRESSOR_ETFS, source=str(p))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    scenarios = {s.name: s for s in read(_BUILTIN_SCENARIOS)}
    if extra:
        scenarios.update({s.name: s for s in read(Path(extra))})
    return tuple(scenarios.values())


@dataclass(frozen=True)
class Covariance:
    etfs: tuple[str, ...]
    matrix: np.ndarray | None
    sessions: int
    start: dt.date | None
    end: dt.date
    error: str | None = None


def etf_covariance(engine_or_conn: Engine | Connection, calc_date: dt.date) -> Covariance:
    """EWMA covariance of the eight ETFs over the 252 sessions ending at calc_date (never today)."""
    window = sessions_ending(calc_date, stress_lib.COVARIANCE_SESSIONS + 1)
    start, end = window[0].date(), window[-1].date()

    def load(conn: Connection) -> pd.DataFrame:
        return store.etf_price_history(conn, REGRESSOR_ETFS, start, end)

    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            prices = load(conn)
    else:
        prices = load(engine_or_conn)
    returns = stress_lib.etf_returns(prices, window, REGRESSOR_ETFS)
    try:
        matrix = stress_lib.ewma_covariance(returns.to_numpy())
        error = None
    except ValueError as exc:
        matrix, error = None, f"correlated path unavailable: {exc}"
    sessions = int((~returns.isna().any(axis=1)).sum())
    return Covariance(tuple(REGRESSOR_ETFS), matrix, sessions, window[1].date(), end, error)


def _stress_documents(pids: Sequence[str], betas: np.ndarray, equity: np.ndarray, cov: Covariance,
                      scenarios: Sequence[stress_lib.Scenario], betas_date: Any) -> dict[str, dict[str, Any]]:
    """Per portfolio: every scenario's direct and correlated P&L per model with factor contributions.

    betas shape (P, F) in FACTOR_NAMES order; equity shape (P,). Vectorised over portfolios.
    """
    etfs = list(cov.etfs)
    per_scenario = []
    for sc in scenarios:
        shocks = stress_lib.scenario_shocks(sc)
        direct = stress_lib.direct_moves(shocks, etfs)
        d_models, d_contrib = stress_lib.model_pnl(betas, equity, FACTOR_LEGS, direct, etfs)
        if cov.matrix is not None:
            moves = stress_lib.conditional_moves(shocks, cov.matrix, etfs)
            c_models, c_contrib = stress_lib.model_pnl(betas, equity, FACTOR_LEGS, moves, etfs)
        else:
            moves, c_models, c_contrib = None, None, None
        per_scenario.append((sc, shocks, moves, d_models, d_contrib, c_models, c_contrib))
    docs = {}
    for i, pid in enumerate(pids):
        results = []
        for sc, shocks, moves, d_models, d_contrib, c_models, c_contrib in per_scenario:
            models = {}
            for m in stress_lib.MODELS:
                contributions = {
                    leg.factor: {"direct": _num(d_contrib[i, f]),
                                 "correlated": None if c_contrib is None else _num(c_contrib[i, f])}
                    for f, leg in enumerate(FACTOR_LEGS) if leg.model == m
                }
                models[m] = {
                    "direct_pnl": _num(d_models[m][i]),
                    "correlated_pnl": None if c_models is None else _num(c_models[m][i]),
                    "contributions": contributions,
                }
            head = models[stress_lib.HEADLINE_MODEL]
            results.append({
                "name": sc.name, "description": sc.description, "category": sc.category,
                "rates_bp": sc.rates_bp, "shocks": shocks,
                "etf_moves": None if moves is None else {e: float(v) for e, v in zip(etfs, moves)},
                "headline": {"model": stress_lib.HEADLINE_MODEL, "direct_pnl": head["direct_pnl"],
                             "correlated_pnl": head["correlated_pnl"]},
                "models": models,
            })
        docs[pid] = {
            "portfolio_id": pid,
            "calc_date": _iso(cov.end),
            "betas_date": _iso(betas_date),
            "equity": float(equity[i]),
            "headline_model": stress_lib.HEADLINE_MODEL,
            "covariance": {"method": "ewma", "lambda": stress_lib.EWMA_LAMBDA, "sessions": cov.sessions,
                           "start": _iso(cov.start), "end": _iso(cov.end), "error": cov.error},
            "tlt_duration": stress_lib.TLT_DURATION,
            "scenarios": results,
        }
    return docs


def _betas_matrix(docs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.array([[np.nan if d["factors"][f]["beta"] is None else d["factors"][f]["beta"] for f in FACTOR_NAMES]
                     for d in docs], dtype=float).reshape(len(docs), len(FACTOR_NAMES))


def _scenario_digest(scenarios: Sequence[stress_lib.Scenario]) -> str:
    return hashlib.sha256(repr([(s.name, sorted(s.shocks.items()), s.rates_bp) for s in scenarios]).encode()).hexdigest()


def _stress_key(exposure_key: str, calc_date: dt.date, scenarios: Sequence[stress_lib.Scenario]) -> str:
    return hashlib.sha256(f"{exposure_key}|{calc_date}|{_scenario_digest(scenarios)}".encode()).hexdigest()


def run_stress_test(engine: Engine, portfolio_id: Any, calc_date: dt.date | None = None,
                    scenario_names: Sequence[str] | None = None, owner_id: int | None = None,
                    ttl: dt.timedelta = DEFAULT_CACHE_TTL) -> dict[str, Any]:
    """Stress-test one portfolio on demand (cached like the exposures)."""
    scenarios = load_scenarios()
    if scenario_names:
        by_name = {s.name: s for s in scenarios}
        unknown = [n for n in scenario_names if n not in by_name]
        if unknown:
            raise ValidationError(f"unknown scenarios {unknown}; known: {', '.join(by_name)}")
        scenarios = [by_name[n] for n in scenario_names]
    text, exposure_key, _ = _exposures(engine, portfolio_id, calc_date, owner_id, ttl)
    exposures = json.loads(text)
    pid = exposures["portfolio_id"]
    day = calc_date or (dt.date.fromisoformat(exposures["betas_date"]) if exposures["betas_date"] else None)
    if day is None:
        raise StressDataError("no symbol betas stored yet: nothing to stress")
    key = _stress_key(exposure_key, day, scenarios)
    with engine.connect() as conn:
        cached = store.read_cache(conn, pid, CACHE_STRESS, key, store.now())
    if cached is not None:
        return json.loads(cached)
    cov = etf_covariance(engine, day)
    doc = _stress_documents([pid], _betas_matrix([exposures]), np.array([exposures["equity"]]), cov, scenarios,
                            exposures["betas_date"])[pid]
    with engine.begin() as conn:
        store.write_cache(conn, [{"portfolio_id": pid, "cache_type": CACHE_STRESS, "cache_key": key,
                                  "data": _dumps(doc), "valid_until": store.now() + ttl}])
    return doc


@dataclass
class StressBatch:
    calc_date: dt.date | None
    portfolios: int
    scenarios: int
    covariance_sessions: int
    covariance_error: str | None
    errors: dict[str, str]


def compute_portfolio_stress_tests(engine: Engine, portfolio_ids: Sequence[str] | None = None,
                                   ttl: dt.timedelta = DEFAULT_CACHE_TTL) -> StressBatch:
    """Stress tests of many portfolios from their exposures; stored in the cache for the API to serve."""
    batch = compute_portfolio_exposures(engine, portfolio_ids, store_results=False)
    scenarios = load_scenarios()
    pids = sorted(batch.documents)
    if batch.betas_date is None or not pids:
        return StressBatch(batch.betas_date, 0, len(scenarios), 0, "no exposures to stress", dict(batch.errors))
    cov = etf_covariance(engine, batch.betas_date)
    docs = [batch.documents[p] for p in pids]
    results = _stress_documents(pids, _betas_matrix(docs), np.array([d["equity"] for d in docs]), cov, scenarios,
                                batch.betas_date)
    until = store.now() + ttl
    with engine.begin() as conn:
        store.write_cache(conn, [
            {"portfolio_id": p, "cache_type": CACHE_STRESS,
             "cache_key": _stress_key(batch.cache_keys[p], batch.betas_date, scenarios),
             "data": _dumps(results[p]), "valid_until": until}
            for p in pids
        ], replace_all=not portfolio_ids)
    return StressBatch(batch.betas_date, len(pids), len(scenarios), cov.sessions, cov.error, dict(batch.errors))
