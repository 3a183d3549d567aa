"""Stress tests: scenario files, the ETF covariance, and every scenario's P&L per factor model,
for one portfolio on demand (cached like the exposures) or for many in a batch."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from symbol_pipeline.lib import stress as stress_lib
from symbol_pipeline.lib.factors import FACTOR_NAMES, FACTORS, FAMILY_MARKET, FAMILY_RATES, FAMILY_RIDGE, REGRESSOR_ETFS
from symbol_pipeline.lib.sessions import OutsideCalendarError, sessions_ending
from symbol_pipeline.services.portfolio.cache import (
    CACHE_STRESS,
    DEFAULT_CACHE_TTL,
    exposure_cache_key,
    lookup_document,
    read_stress,
    stress_cache_key,
    write_one,
)
from symbol_pipeline.services.portfolio.documents import dumps, iso, number
from symbol_pipeline.services.portfolio.errors import DateOutOfRangeError, StressDataError, ValidationError
from symbol_pipeline.services.portfolio.exposures import compute_portfolio_exposures, exposures_text
from symbol_pipeline.services.portfolio.inputs import check_date
from symbol_pipeline.storage import latest
from symbol_pipeline.storage.dialect import autocommit
from symbol_pipeline.storage.portfolio import cache as cache_store
from symbol_pipeline.storage.portfolio import now

_BUILTIN_SCENARIOS = Path(__file__).resolve().parents[2] / "data" / "stress_scenarios.json"


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
    """The built-in scenarios, extended (or overridden by name) by the scenarios file at `path`."""
    return list(_load_scenarios(str(path) if path else None))


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


def covariance_window(day: dt.date) -> pd.DatetimeIndex:
    """The COVARIANCE_SESSIONS + 1 sessions ending at `day`; a day so close to the exchange calendar's
    first session (1995-01-03) that the window would begin before it is a DateOutOfRangeError (422)."""
    try:
        return sessions_ending(day, stress_lib.COVARIANCE_SESSIONS + 1)
    except OutsideCalendarError as exc:
        raise DateOutOfRangeError(f"date {day}: the covariance window cannot be served: {exc}") from None


def etf_covariance(engine_or_conn: Engine | Connection, calc_date: dt.date) -> Covariance:
    """EWMA covariance of the eight ETFs over the 252 sessions ending at calc_date (never today)."""
    window = covariance_window(calc_date)
    start, end = window[0].date(), window[-1].date()
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            prices = latest.etf_price_history(conn, REGRESSOR_ETFS, start, end)
    else:
        prices = latest.etf_price_history(engine_or_conn, REGRESSOR_ETFS, start, end)
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
                    leg.factor: {"direct": number(d_contrib[i, f]),
                                 "correlated": None if c_contrib is None else number(c_contrib[i, f])}
                    for f, leg in enumerate(FACTOR_LEGS) if leg.model == m
                }
                models[m] = {
                    "direct_pnl": number(d_models[m][i]),
                    "correlated_pnl": None if c_models is None else number(c_models[m][i]),
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
            "calc_date": iso(cov.end),
            "betas_date": iso(betas_date),
            "equity": float(equity[i]),
            "headline_model": stress_lib.HEADLINE_MODEL,
            "covariance": {"method": "ewma", "lambda": stress_lib.EWMA_LAMBDA, "sessions": cov.sessions,
                           "start": iso(cov.start), "end": iso(cov.end), "error": cov.error},
            "tlt_duration": stress_lib.TLT_DURATION,
            "scenarios": results,
        }
    return docs


def _betas_matrix(docs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.array([[np.nan if d["factors"][f]["beta"] is None else d["factors"][f]["beta"] for f in FACTOR_NAMES]
                     for d in docs], dtype=float).reshape(len(docs), len(FACTOR_NAMES))


def _stress_key(head: Any, calc_date: dt.date | None, scenarios: Sequence[stress_lib.Scenario]) -> str:
    """The stress entry's key from the cache lookup's row: its exposures key (the one
    `exposures_text` computes from the same row), its date (the betas' by default) and the scenarios."""
    day = calc_date or head.betas_date
    if day is None:
        return ""  # no betas: nothing was ever stored to hit
    return stress_cache_key(exposure_cache_key(head.version, head.prices_date, head.betas_date, calc_date), day,
                            scenarios)


def stress_test_json(engine: Engine, portfolio_id: Any, calc_date: dt.date | None = None,
                     scenario_names: Sequence[str] | None = None, owner_id: int | None = None,
                     ttl: dt.timedelta = DEFAULT_CACHE_TTL,
                     scenarios_file: str | os.PathLike | None = None, key_hash: str | None = None) -> tuple[str, bool]:
    """One portfolio's stress test as JSON text (served as stored, like the exposures) and whether
    the cache answered; `scenarios_file` extends the built-in scenarios. A hit is one round trip,
    the check of the caller's key (`key_hash`, KeyRevokedError) included."""
    scenarios = load_scenarios(scenarios_file)
    if scenario_names:
        by_name = {s.name: s for s in scenarios}
        unknown = [n for n in scenario_names if n not in by_name]
        if unknown:
            raise ValidationError(f"unknown scenarios {unknown}; known: {', '.join(by_name)}")
        scenarios = [by_name[n] for n in scenario_names]
    check_date(calc_date)
    with autocommit(engine).connect() as conn:
        _, _, _, cached = lookup_document(conn, portfolio_id, CACHE_STRESS, calc_date, owner_id,
                                          lambda head: _stress_key(head, calc_date, scenarios), key_hash)
    if cached is not None:
        return cached, True
    text, exposure_key, _ = exposures_text(engine, portfolio_id, calc_date, owner_id, ttl)
    exposures = json.loads(text)
    pid = exposures["portfolio_id"]
    day = calc_date or (dt.date.fromisoformat(exposures["betas_date"]) if exposures["betas_date"] else None)
    if day is None:
        raise StressDataError("no symbol betas stored yet: nothing to stress")
    key = stress_cache_key(exposure_key, day, scenarios)
    with autocommit(engine).connect() as conn:  # one SELECT: no BEGIN/ROLLBACK round trip around it
        cached = read_stress(conn, pid, key)
    if cached is not None:
        return cached, True
    cov = etf_covariance(engine, day)
    doc = _stress_documents([pid], _betas_matrix([exposures]), np.array([exposures["equity"]]), cov, scenarios,
                            exposures["betas_date"])[pid]
    text = dumps(doc)
    write_one(engine, pid, CACHE_STRESS, key, text, ttl)
    return text, False


def run_stress_test(engine: Engine, portfolio_id: Any, calc_date: dt.date | None = None,
                    scenario_names: Sequence[str] | None = None, owner_id: int | None = None,
                    ttl: dt.timedelta = DEFAULT_CACHE_TTL,
                    scenarios_file: str | os.PathLike | None = None) -> dict[str, Any]:
    """The stress test decoded (see stress_test_json)."""
    return json.loads(stress_test_json(engine, portfolio_id, calc_date, scenario_names, owner_id, ttl,
                                       scenarios_file)[0])


@dataclass
class StressBatch:
    calc_date: dt.date | None
    portfolios: int
    scenarios: int
    covariance_sessions: int
    covariance_error: str | None
    errors: dict[str, str]


def compute_portfolio_stress_tests(engine: Engine, portfolio_ids: Sequence[str] | None = None,
                                   ttl: dt.timedelta = DEFAULT_CACHE_TTL,
                                   scenarios_file: str | os.PathLike | None = None) -> StressBatch:
    """Stress tests of many portfolios from their exposures; stored in the cache for the API to serve."""
    batch = compute_portfolio_exposures(engine, portfolio_ids, store_results=False)
    scenarios = load_scenarios(scenarios_file)
    pids = sorted(batch.documents)
    if batch.betas_date is None or not pids:
        return StressBatch(batch.betas_date, 0, len(scenarios), 0, "no exposures to stress", dict(batch.errors))
    cov = etf_covariance(engine, batch.betas_date)
    docs = [batch.documents[p] for p in pids]
    results = _stress_documents(pids, _betas_matrix(docs), np.array([d["equity"] for d in docs]), cov, scenarios,
                                batch.betas_date)
    until = now() + ttl
    with engine.begin() as conn:
        cache_store.write_cache(conn, [
            {"portfolio_id": p, "cache_type": CACHE_STRESS,
             "cache_key": stress_cache_key(batch.cache_keys[p], batch.betas_date, scenarios),
             "data": dumps(results[p]), "valid_until": until}
            for p in pids
        ], replace_all=not portfolio_ids)
    return StressBatch(batch.betas_date, len(pids), len(scenarios), cov.sessions, cov.error, dict(batch.errors))
