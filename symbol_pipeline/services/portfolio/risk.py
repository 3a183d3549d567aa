"""Risk decomposition of one portfolio on demand, per joint factor model (market, rates, style),
cached and invalidated like the exposures; the maths is `lib.risk`."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from symbol_pipeline.lib import risk as risk_lib
from symbol_pipeline.lib import stress as stress_lib
from symbol_pipeline.lib.factors import REGRESSOR_ETFS
from symbol_pipeline.services.portfolio import holdings
from symbol_pipeline.services.portfolio.cache import DEFAULT_CACHE_TTL, exposure_cache_key, lookup_document, write_one
from symbol_pipeline.services.portfolio.documents import dumps, iso, number
from symbol_pipeline.services.portfolio.errors import NonPositiveEquityError, StressDataError
from symbol_pipeline.services.portfolio.inputs import check_date
from symbol_pipeline.services.portfolio.stress import covariance_window
from symbol_pipeline.storage import betas as beta_store
from symbol_pipeline.storage import latest
from symbol_pipeline.storage.dialect import autocommit
from symbol_pipeline.storage.portfolio import now

CACHE_RISK = "risk"
MODEL_FACTORS: tuple[str, ...] = tuple(f for m in risk_lib.RISK_MODELS for f in m.factors)

ASSUMPTIONS: tuple[str, ...] = (
    "One factor model at a time; their variances are never summed (the six style ETFs all carry the market).",
    "Residuals are taken as uncorrelated with the factors and across symbols. For the one-factor market and rates "
    "models they are not (names share industries and the market), so their specific variance is understated.",
    "Factor covariance: zero-mean EWMA, lambda 0.94 (effective memory about 16 sessions), over the 252 sessions "
    "ending at as_of where all of the model's factors have a return, at least 60; it is mixed with residual "
    "variances from the equal-weighted regression windows (90 sessions).",
    "Variances are daily, as fractions of equity squared; volatility_annualised is sqrt(252 V). VaR is one-day "
    "parametric, z sqrt(V) equity in USD with z 1.6449 (95%) and 2.3263 (99%), no mean term; positive is a loss.",
    "Symbols without the model's betas drop out; coverage is the share of gross exposure that is covered.",
    "Headline: the style model, the richest joint model (stress tests headline the market model, because a "
    "scenario is read in market terms). Spread betas are four separate regressions: no decomposition.",
)


class RiskDataError(StressDataError):
    """The data a decomposition needs is not stored (no betas, or betas without residual variance)."""


def risk_cache_key(version: int, prices_date: Any, betas_date: Any, as_of: Any) -> str:
    """Keyed like the exposures (version, closes and betas dates, as_of): a change invalidates both."""
    return "risk|" + exposure_cache_key(version, prices_date, betas_date, as_of)


@dataclass(frozen=True)
class Holdings:
    """A portfolio's book on a date: equity and signed market value per symbol (positions summed)."""

    equity: float
    market_values: dict[str, float] = field(default_factory=dict)
    unpriced: tuple[str, ...] = ()


def holdings_on(conn: Connection, portfolio_id: str, day: dt.date, as_of: dt.date | None,
                prices_date: dt.date | None) -> Holdings:
    """The holdings the risk is computed on, read as the exposures read theirs (so that b is the
    exposures' betas): the positions and equity of `day` (`holdings.read_book`), each valued at its
    symbol's latest close on or before as_of, else at its entry price (named unpriced). The one
    place to change if the holdings are read another way (e.g. `holdings.holdings_as_of`)."""
    book = holdings.read_book(conn, [portfolio_id], [day])
    holdings.check_not_before(day, book.first_date(0), portfolio_id)
    pos = book.frame(0)
    closes = latest.latest_closes(conn, sorted(set(pos["symbol"])), as_of, prices_date)
    close = pos["symbol"].map(dict(zip(closes["symbol"], closes["value"].astype(float)))).astype(float)
    unpriced = close.isna().to_numpy()
    price = np.where(unpriced, pos["entry_price"].to_numpy(dtype=float), close.to_numpy())
    value = pd.Series(np.nan_to_num(pos["quantity"].to_numpy(dtype=float) * price), index=pos["symbol"].to_numpy())
    per_symbol = value.groupby(level=0).sum()  # positions of one symbol summed
    return Holdings(float(book.equity[0, 0]), {str(k): float(v) for k, v in per_symbol.items()},
                    tuple(sorted(set(pos["symbol"][unpriced]))))


def factor_return_window(conn: Connection, day: dt.date) -> pd.DataFrame:
    """The eight ETFs' daily returns over the stress tests' covariance window ending at `day`, (252, 8)."""
    window = covariance_window(day)
    prices = latest.etf_price_history(conn, REGRESSOR_ETFS, window[0].date(), window[-1].date())
    return stress_lib.etf_returns(prices, window, REGRESSOR_ETFS)


def _require_residuals(rows: pd.DataFrame) -> None:
    lacking = rows[rows["residual_variance"].isna()]
    if len(lacking):
        days = ", ".join(sorted({iso(pd.Timestamp(d).date()) for d in lacking["date"]}))
        raise RiskDataError(f"residual variance not computed for {days}: backfill (symbol-pipeline backfill "
                            "--start D --end D recomputes a date's betas with it)")


_FACTOR_COLUMN = {f: k for k, f in enumerate(MODEL_FACTORS)}


def _symbol_arrays(symbols: list[str], rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(betas, residual variances), both shape (S, len(MODEL_FACTORS)), NaN where no row."""
    betas = np.full((len(symbols), len(MODEL_FACTORS)), np.nan)
    s2 = betas.copy()
    row_of = {s: i for i, s in enumerate(symbols)}
    at = (rows["symbol"].map(row_of).to_numpy(dtype=np.int64), rows["factor"].map(_FACTOR_COLUMN).to_numpy(dtype=np.int64))
    betas[at] = rows["beta"].to_numpy(dtype=float)
    s2[at] = rows["residual_variance"].to_numpy(dtype=float)
    return betas, s2


def _model_document(model: risk_lib.RiskModel, weights: np.ndarray, symbols: list[str], all_betas: np.ndarray,
                    all_s2: np.ndarray, returns: pd.DataFrame, equity: float) -> dict[str, Any]:
    """One model's figures for one portfolio; weights (S,), all_betas and all_s2 (S, len(MODEL_FACTORS))."""
    cols = [_FACTOR_COLUMN[f] for f in model.factors]
    betas = all_betas[:, cols]  # (S, K)
    # The K rows of a symbol share one regression, so they carry the same residual variance.
    s2 = all_s2[:, cols[0]]  # (S,)
    sessions = int(returns[list(model.etfs)].notna().all(axis=1).sum())
    doc: dict[str, Any] = {"factors": list(model.factors), "etfs": list(model.etfs), "covariance_sessions": sessions}
    try:
        cov = risk_lib.model_covariance(returns, model)
    except ValueError as exc:
        cov = np.full((len(model.factors),) * 2, np.nan)
        doc["error"] = f"factor covariance unavailable: {exc}"
    r = risk_lib.decompose(weights[None, :], betas, s2, cov, np.array([equity]))
    covered = np.isfinite(betas).all(axis=1) & np.isfinite(s2)
    figures = {
        "factor_variance": number(r.factor_variance[0]), "specific_variance": number(r.specific_variance[0]),
        "total_variance": number(r.total_variance[0]), "volatility_annualised": number(r.volatility_annualised[0]),
        "var_95_1d": number(r.var_95_1d[0]), "var_99_1d": number(r.var_99_1d[0]), "coverage": number(r.coverage[0]),
        "contributions": {f: number(c) for f, c in zip(model.factors, r.contributions[0])},
        "exposures": {f: number(b) for f, b in zip(model.factors, r.exposures[0])},
        "missing_symbols": [s for s, ok in zip(symbols, covered) if not ok],
    }
    return {**figures, **doc, "error": doc.get("error")}


def risk_document(pid: str, day: dt.date, holdings: Holdings, rows: pd.DataFrame, returns: pd.DataFrame,
                  prices_date: Any, betas_date: Any) -> dict[str, Any]:
    """The risk document of one portfolio from its holdings, its symbols' latest betas and residual
    variances (rows: symbol, factor, beta, residual_variance, date) and the ETF returns window."""
    symbols = sorted(holdings.market_values)
    weights = np.array([holdings.market_values[s] for s in symbols], dtype=float) / holdings.equity  # (S,)
    betas, s2 = _symbol_arrays(symbols, rows)
    return {
        "portfolio_id": pid, "as_of": iso(day), "prices_date": iso(prices_date), "betas_date": iso(betas_date),
        "currency": "USD", "equity": holdings.equity, "headline": risk_lib.HEADLINE_MODEL,
        "models": {m.name: _model_document(m, weights, symbols, betas, s2, returns, holdings.equity)
                   for m in risk_lib.RISK_MODELS},
        "covariance": {"method": "ewma", "lambda": stress_lib.EWMA_LAMBDA, "window_sessions": len(returns),
                       "min_sessions": stress_lib.MIN_COVARIANCE_SESSIONS,
                       "start": iso(returns.index[0].date()) if len(returns) else None, "end": iso(day)},
        "unpriced_symbols": list(holdings.unpriced),
        "assumptions": list(ASSUMPTIONS),
        "computed_at": now().isoformat(),
    }


def portfolio_risk_json(engine: Engine, portfolio_id: Any, as_of: dt.date | None = None, owner_id: int | None = None,
                        ttl: dt.timedelta = DEFAULT_CACHE_TTL, key_hash: str | None = None) -> tuple[str, bool]:
    """The risk document as JSON text (served as is by the API) and whether the cache answered.
    With `key_hash`, the caller's key is checked in the cache lookup's round trip (KeyRevokedError)."""
    held_on = check_date(as_of)  # the holdings of as_of, today's by default (as the exposures)
    with autocommit(engine).connect() as conn:
        pid, head, key, cached = lookup_document(
            conn, portfolio_id, CACHE_RISK, as_of, owner_id,
            lambda head: risk_cache_key(head.version, head.prices_date, head.betas_date, as_of), key_hash)
        if cached is not None:
            return cached, True
        held = holdings_on(conn, pid, held_on, as_of, head.prices_date)
        if not held.equity > 0:
            raise NonPositiveEquityError(
                f"portfolio {pid} has equity {held.equity:g}; weights (market value / equity) need a positive equity")
        if head.betas_date is None:
            raise RiskDataError(f"no symbol betas stored on or before {iso(as_of) or 'today'}: no risk to decompose")
        day = as_of or head.betas_date  # the covariance ends here: the latest betas' session by default
        rows = beta_store.latest_betas_and_residuals(conn, sorted(held.market_values), MODEL_FACTORS, as_of,
                                                     head.betas_date)
        _require_residuals(rows)
        returns = factor_return_window(conn, day)
    text = dumps(risk_document(pid, day, held, rows, returns, head.prices_date, head.betas_date))
    write_one(engine, pid, CACHE_RISK, key, text, ttl)
    return text, False


def get_portfolio_risk(engine: Engine, portfolio_id: Any, as_of: dt.date | None = None, owner_id: int | None = None,
                       ttl: dt.timedelta = DEFAULT_CACHE_TTL) -> dict[str, Any]:
    """A portfolio's risk decomposition per factor model, from the cache when nothing changed."""
    return json.loads(portfolio_risk_json(engine, portfolio_id, as_of, owner_id, ttl)[0])
