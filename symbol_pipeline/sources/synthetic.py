"""A deterministic, offline synthetic market whose true factor betas are known.

Eight factor ETFs (SPY TLT VTV VUG MTUM QUAL IWM USMV) move with a fixed, realistic daily
covariance. Every stock's daily total return is a fixed linear mix of those eight returns plus
independent idiosyncratic noise, so its population betas follow from the covariance alone
(`true_betas`). Raw closes carry quarterly dividends and occasional splits such that

    (close_t + dividend_t) * split_ratio_t / close_(t-1) - 1 == total return_t

to float precision, which is what a pipeline that stores raw closes must get right.

Everything random is a counter-based hash of (seed, symbol, stream, session index) rather than a
sequential generator: any symbol on any session can be drawn on its own, so a fetch of five
symbols over one month neither generates the rest of the universe nor depends on which other
symbols or dates were asked for, and a fetch of 10,000 symbols is a few array operations.

What a test estimating betas should expect: OLS betas over a window scatter around `true_betas`
with their usual standard errors (the part of a stock's return not explained by the regressor is
independent of it, all returns being jointly normal); ridge betas (alpha=1 on standardised
regressors, REFERENCE.md §1) are in addition shrunk slightly towards zero, and the six style ETFs
are so collinear that their individual coefficients carry large standard errors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from symbol_pipeline.lib import sessions as _sessions
from symbol_pipeline.lib.factors import (
    FACTOR_NAMES,
    MARKET_ETF,
    RATES_ETF,
    REGRESSOR_ETFS,
    RIDGE_ETFS,
    RIDGE_FACTORS,
    SPREAD_FACTORS,
)
from symbol_pipeline.lib.symbols import validate_symbol
from symbol_pipeline.sources.base import PRICE_COLUMNS, FetchResult, PriceSource, split_valid_symbols, UnknownSymbolError, empty_prices

# --- the factor ETFs -------------------------------------------------------------------------

ETFS: tuple[str, ...] = REGRESSOR_ETFS  # SPY TLT VTV VUG MTUM QUAL IWM USMV, in this order
_ANNUAL_VOL = np.array([0.17, 0.15, 0.16, 0.20, 0.18, 0.16, 0.22, 0.12])
_ANNUAL_DRIFT = np.array([0.08, 0.02, 0.07, 0.09, 0.09, 0.08, 0.07, 0.07])
# Correlations of daily returns, rows/columns in ETFS order. Equities move together (the style
# ETFs all carry the market), long Treasuries are mildly negatively correlated with them.
_CORRELATION = np.array(
    [
        # SPY   TLT   VTV   VUG   MTUM  QUAL  IWM   USMV
        [1.00, -0.25, 0.95, 0.96, 0.90, 0.97, 0.85, 0.88],  # SPY
        [-0.25, 1.00, -0.28, -0.18, -0.15, -0.22, -0.25, -0.05],  # TLT
        [0.95, -0.28, 1.00, 0.85, 0.80, 0.92, 0.86, 0.87],  # VTV
        [0.96, -0.18, 0.85, 1.00, 0.90, 0.93, 0.80, 0.80],  # VUG
        [0.90, -0.15, 0.80, 0.90, 1.00, 0.87, 0.75, 0.80],  # MTUM
        [0.97, -0.22, 0.92, 0.93, 0.87, 1.00, 0.82, 0.88],  # QUAL
        [0.85, -0.25, 0.86, 0.80, 0.75, 0.82, 1.00, 0.72],  # IWM
        [0.88, -0.05, 0.87, 0.80, 0.80, 0.88, 0.72, 1.00],  # USMV
    ]
)
TRADING_DAYS = 252
# Daily covariance, shape (8, 8), in ETFS order.
ETF_DAILY_COVARIANCE = np.outer(_ANNUAL_VOL, _ANNUAL_VOL) * _CORRELATION / TRADING_DAYS
ETF_DAILY_MEAN = _ANNUAL_DRIFT / TRADING_DAYS
_ETF_ANNUAL_YIELD = np.array([0.014, 0.035, 0.024, 0.006, 0.010, 0.013, 0.012, 0.018])
_ETF_ANCHOR_PRICE = np.array([470.0, 145.0, 145.0, 330.0, 185.0, 150.0, 225.0, 80.0])

_IDX_SPY = ETFS.index(MARKET_ETF)
_IDX_TLT = ETFS.index(RATES_ETF)
_IDX_STYLE = np.array([ETFS.index(e) for e in RIDGE_ETFS])

# --- the catalogue of familiar tickers, with the kind of stock each behaves like ----------------

CORE, DEFENSIVE, HIGH_BETA = "core", "defensive", "high_beta"
CATALOGUE: dict[str, str] = {
    **dict.fromkeys(
        "AAPL MSFT AMZN GOOGL META JPM JNJ XOM PG HD KO PEP WMT BAC CSCO INTC T VZ DIS MCD IBM CAT GE "
        "UNH V MA CVX MRK ABBV COST ORCL CRM ADBE NFLX BRK-B GS LLY PFE HON".split(),
        CORE,
    ),
    **dict.fromkeys("NEE DUK SO D AEP XEL".split(), DEFENSIVE),
    **dict.fromkeys("NVDA TSLA AMD AVGO SHOP".split(), HIGH_BETA),
}

# --- shape of the synthetic universe ----------------------------------------------------------

UNIVERSE_PREFIX = "SYN"
_UNIVERSE_RE = re.compile(rf"^{UNIVERSE_PREFIX}(\d{{4,}})$")
# Prices are cumulated from this session in both directions, so a fetch only generates the
# sessions between it and the requested window (recent windows are the common case).
_ANCHOR_DATE = "2022-01-03"
_DIVIDEND_PERIOD = 63  # sessions between quarterly dividends
_P_LATE_LISTING = 0.04
_P_DELISTING = 0.03
_P_GAPPY = 0.03
_GAP_RATE = 0.01  # chance that a gappy symbol's row is missing on a given session
_SPLIT_RATE = 1.0 / 1500.0  # per session, for the ~20% of names that split at all
_LATE_LISTING_RANGE = ("2015-01-02", "2026-06-30")
_DELISTING_RANGE = ("2019-01-02", "2026-06-30")
_CHUNK = 1000  # symbols generated at once, to bound memory

# --- counter-based randomness (SplitMix64) ------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STREAM_MUL = np.uint64(0xD1B54A32D192ED03)

# Streams: one per independent quantity.
_S_PARAM, _S_IDIO, _S_SPLIT, _S_SPLIT_RATIO, _S_GAP, _S_OPEN, _S_HIGH, _S_LOW, _S_VOLUME = range(1, 10)
_S_ETF = 100


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, elementwise on uint64 (wrapping arithmetic is intended)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _uniform(keys: np.ndarray, stream: int, index: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1): keys shape (N,), index shape (T,) -> (N, T); one draw per (key, index)."""
    with np.errstate(over="ignore"):
        k = _mix(np.asarray(keys, dtype=np.uint64) ^ (np.uint64(stream) * _STREAM_MUL))
        z = k[:, None] + np.asarray(index, dtype=np.uint64)[None, :] * _GOLDEN
        z = _mix(z)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def _uniform_pairs(keys: np.ndarray, stream: int, index: np.ndarray) -> np.ndarray:
    """Like `_uniform` but elementwise over broadcast (keys, index) pairs, e.g. the rows of a frame."""
    with np.errstate(over="ignore"):
        k = _mix(np.asarray(keys, dtype=np.uint64) ^ (np.uint64(stream) * _STREAM_MUL))
        z = _mix(k.reshape(-1) + np.asarray(index, dtype=np.uint64) * _GOLDEN)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def _symbol_key(seed: int, symbol: str) -> int:
    """A stable 64-bit key for (seed, symbol); collisions across 10,000 names are negligible."""
    digest = hashlib.blake2b(f"{seed}:{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


# --- per-symbol parameters --------------------------------------------------------------------


@dataclass(frozen=True)
class ListingInfo:
    """When a symbol trades. `last_session` None: still trading at the end of the calendar."""

    symbol: str
    first_session: dt.date
    last_session: dt.date | None
    gap_rate: float  # chance of an isolated missing row on any session (0 for most symbols)

    @property
    def listed_late(self) -> bool:
        return self.first_session > _calendar_dates()[0]

    @property
    def delisted(self) -> bool:
        return self.last_session is not None

    @property
    def has_gaps(self) -> bool:
        return self.gap_rate > 0


@dataclass
class _Params:
    """Per-symbol generating parameters, arrays of length N unless noted."""

    symbols: list[str]
    keys: np.ndarray  # uint64
    category: np.ndarray  # object
    loadings: np.ndarray  # (N, 8) weights on the ETF returns
    idio_sd: np.ndarray
    dividend_yield: np.ndarray  # per payment, 0 for non-payers
    dividend_phase: np.ndarray  # int: session index mod _DIVIDEND_PERIOD of payments
    split_rate: np.ndarray
    gap_rate: np.ndarray
    first: np.ndarray  # int: global session index of the first row
    last: np.ndarray  # int: global session index of the last row
    anchor_price: np.ndarray
    volume_base: np.ndarray


_CAL_CACHE: dict[str, object] = {}


def _calendar_index() -> pd.DatetimeIndex:
    """Every NYSE session the calendar knows, tz-naive; position = global session index."""
    if "idx" not in _CAL_CACHE:
        _CAL_CACHE["idx"] = _sessions.all_sessions()
    return _CAL_CACHE["idx"]  # type: ignore[return-value]


def _calendar_dates() -> np.ndarray:
    if "dates" not in _CAL_CACHE:
        _CAL_CACHE["dates"] = np.array([t.date() for t in _calendar_index()], dtype=object)
    return _CAL_CACHE["dates"]  # type: ignore[return-value]


def _session_position(day: str | dt.date, side: str = "left") -> int:
    return int(_calendar_index().searchsorted(pd.Timestamp(day), side=side))


class SyntheticMarket(PriceSource):
    """Prices of a synthetic market: 8 factor ETFs, a `SYN0001`.. universe and a real-ticker catalogue.

    seed: every number follows from (seed, symbol); n_symbols: size of `universe()`.
    Both default to the settings (SYMBOL_PIPELINE_SYNTHETIC_SEED / _SYMBOLS).
    `adj_close` is NaN: closes are raw, use close, dividend and split_ratio.
    """

    name = "synthetic"
    adjusted_only = False

    def __init__(self, seed: int | None = None, n_symbols: int | None = None) -> None:
        if seed is None or n_symbols is None:
            from symbol_pipeline.config import get_settings

            settings = get_settings()
            seed = settings.synthetic_seed if seed is None else seed
            n_symbols = settings.synthetic_universe_size if n_symbols is None else n_symbols
        if n_symbols < 0:
            raise ValueError(f"n_symbols must be >= 0, got {n_symbols}")
        self.seed = int(seed)
        self.n_symbols = int(n_symbols)
        self._etf_returns_cache: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"SyntheticMarket(seed={self.seed}, n_symbols={self.n_symbols})"

    # -- what it serves ------------------------------------------------------------------------

    def universe(self) -> list[str]:
        """The synthetic stock universe: SYN0001 .. SYN<n_symbols>."""
        return [f"{UNIVERSE_PREFIX}{i:04d}" for i in range(1, self.n_symbols + 1)]

    @staticmethod
    def catalogue() -> list[str]:
        """Familiar real tickers the market also serves (synthetic prices, full history)."""
        return list(CATALOGUE)

    def available_symbols(self) -> list[str]:
        return [*ETFS, *self.universe(), *CATALOGUE]

    def knows(self, symbol: str) -> bool:
        if symbol in CATALOGUE or symbol in ETFS:
            return True
        m = _UNIVERSE_RE.match(symbol)
        return bool(m) and 1 <= int(m.group(1)) <= self.n_symbols and symbol == f"{UNIVERSE_PREFIX}{int(m.group(1)):04d}"

    # -- the factor ETFs -------------------------------------------------------------------------

    @staticmethod
    def etf_covariance() -> pd.DataFrame:
        """The population daily covariance of the eight ETF returns the market draws from."""
        return pd.DataFrame(ETF_DAILY_COVARIANCE, index=list(ETFS), columns=list(ETFS))

    def _etf_returns(self) -> np.ndarray:
        """Daily ETF returns over the whole calendar, shape (T_calendar, 8); drawn once, cached.

        Drawn per session index from the seed, so a longer calendar (it grows with time) leaves
        the returns of existing sessions unchanged.
        """
        if self._etf_returns_cache is None:
            n = len(_calendar_index())
            key = np.array([_symbol_key(self.seed, "__etf_factors__")], dtype=np.uint64)
            z = np.column_stack(
                [ndtri(_uniform(key, _S_ETF + k, np.arange(n, dtype=np.uint64))[0]) for k in range(len(ETFS))]
            )  # (T, 8) iid standard normal
            chol = np.linalg.cholesky(ETF_DAILY_COVARIANCE)
            self._etf_returns_cache = ETF_DAILY_MEAN[None, :] + z @ chol.T
        return self._etf_returns_cache

    # -- per-symbol parameters -------------------------------------------------------------------

    def _params(self, symbols: Sequence[str]) -> _Params:
        """Generating parameters of known `symbols`, vectorised; depends only on (seed, symbol)."""
        n = len(symbols)
        keys = np.array([_symbol_key(self.seed, s) for s in symbols], dtype=np.uint64)
        u = _uniform(keys, _S_PARAM, np.arange(32, dtype=np.uint64))  # (N, 32)
        n_cal = len(_calendar_index())

        is_etf = np.array([s in ETFS for s in symbols], dtype=bool)
        is_cat = np.array([s in CATALOGUE for s in symbols], dtype=bool)
        is_uni = ~is_etf & ~is_cat

        category = np.where(u[:, 0] < 0.75, CORE, np.where(u[:, 0] < 0.87, DEFENSIVE, HIGH_BETA)).astype(object)
        for i in np.flatnonzero(is_cat):
            category[i] = CATALOGUE[symbols[i]]
        defensive = category == DEFENSIVE
        high = category == HIGH_BETA

        # Market beta the stock is built to have, by kind.
        beta = np.where(
            defensive, 0.3 + 0.35 * u[:, 1], np.where(high, 1.5 + 0.7 * u[:, 1], 0.7 + 0.6 * u[:, 1])
        )
        # Mix over SPY and the six style ETFs: Dirichlet-like weights, tilted by kind.
        tilt = np.ones((n, 7))
        tilt[:, 0] = 2.0  # SPY
        style_cols = {e: 1 + i for i, e in enumerate(RIDGE_ETFS)}
        tilt[defensive, style_cols["USMV"]] = 4.0
        tilt[defensive, style_cols["QUAL"]] = 2.0
        for e in ("VUG", "MTUM", "IWM"):
            tilt[high, style_cols[e]] = 2.5
        mix = tilt * -np.log(u[:, 2:9])
        mix /= mix.sum(axis=1, keepdims=True)
        etf_beta = ETF_DAILY_COVARIANCE[:, _IDX_SPY] / ETF_DAILY_COVARIANCE[_IDX_SPY, _IDX_SPY]
        eq_idx = np.array([_IDX_SPY, *_IDX_STYLE])
        mix *= (beta / (mix @ etf_beta[eq_idx]))[:, None]
        loadings = np.zeros((n, len(ETFS)))
        loadings[:, eq_idx] = mix
        loadings[:, _IDX_STYLE] += 0.15 * ndtri(u[:, 9:15])  # idiosyncratic style tilts, either sign
        loadings[:, _IDX_TLT] = np.where(
            defensive, 0.2 + 0.3 * u[:, 15], np.where(high, -0.05 + 0.1 * (u[:, 15] - 0.5), 0.1 * (u[:, 15] - 0.5))
        )
        idio_sd = np.where(
            defensive, 0.008 + 0.006 * u[:, 16], np.where(high, 0.018 + 0.01 * u[:, 16], 0.01 + 0.01 * u[:, 16])
        )

        pays = u[:, 17] < np.where(defensive, 0.85, np.where(high, 0.2, 0.5))
        annual_yield = np.where(defensive, 0.03 + 0.02 * u[:, 18], 0.005 + 0.035 * u[:, 18])
        dividend_yield = np.where(pays, annual_yield / 4, 0.0)
        dividend_phase = (u[:, 19] * _DIVIDEND_PERIOD).astype(np.int64)
        split_rate = np.where(u[:, 20] < 0.2, _SPLIT_RATE, 0.0)

        first = np.zeros(n, dtype=np.int64)
        last = np.full(n, n_cal - 1, dtype=np.int64)
        lo, hi = _session_position(_LATE_LISTING_RANGE[0]), _session_position(_LATE_LISTING_RANGE[1])
        late = is_uni & (u[:, 21] < _P_LATE_LISTING)
        first[late] = lo + (u[late, 22] * (hi - lo)).astype(np.int64)
        lo, hi = _session_position(_DELISTING_RANGE[0]), _session_position(_DELISTING_RANGE[1])
        gone = is_uni & (u[:, 23] < _P_DELISTING)
        last[gone] = np.maximum(lo + (u[gone, 24] * (hi - lo)).astype(np.int64), first[gone] + TRADING_DAYS)
        last = np.minimum(last, n_cal - 1)
        gap_rate = np.where(is_uni & (u[:, 25] < _P_GAPPY), _GAP_RATE, 0.0)

        anchor_price = np.clip(np.exp(np.log(45.0) + 0.8 * ndtri(u[:, 26])), 5.0, 900.0)
        volume_base = np.exp(np.log(2e6) + 1.0 * ndtri(u[:, 27]))

        # The ETFs are the factors themselves: unit loading, no noise, dividends, no splits.
        for i in np.flatnonzero(is_etf):
            k = ETFS.index(symbols[i])
            loadings[i] = 0.0
            loadings[i, k] = 1.0
            idio_sd[i] = 0.0
            dividend_yield[i] = _ETF_ANNUAL_YIELD[k] / 4
            split_rate[i] = 0.0
            anchor_price[i] = _ETF_ANCHOR_PRICE[k]
            volume_base[i] = 2e7
            category[i] = "etf"

        return _Params(
            symbols=list(symbols),
            keys=keys,
            category=category,
            loadings=loadings,
            idio_sd=idio_sd,
            dividend_yield=dividend_yield,
            dividend_phase=dividend_phase,
            split_rate=split_rate,
            gap_rate=gap_rate,
            first=first,
            last=last,
            anchor_price=anchor_price,
            volume_base=volume_base,
        )

    def _require_known(self, symbols: Iterable[str]) -> list[str]:
        out = []
        for raw in symbols:
            s = validate_symbol(raw)
            if not self.knows(s):
                raise UnknownSymbolError(f"{s}: unknown ticker for {self!r}")
            out.append(s)
        return out

    # -- what tests and the stress code may want to know -------------------------------------------

    def loadings(self, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        """Weights of each symbol's total return on the eight ETF returns (columns ETFS)."""
        syms = self.available_symbols() if symbols is None else self._require_known(symbols)
        p = self._params(syms)
        return pd.DataFrame(p.loadings, index=pd.Index(syms, name="symbol"), columns=list(ETFS))

    def idiosyncratic_sd(self, symbols: Sequence[str] | None = None) -> pd.Series:
        syms = self.available_symbols() if symbols is None else self._require_known(symbols)
        return pd.Series(self._params(syms).idio_sd, index=pd.Index(syms, name="symbol"), name="idio_sd")

    def true_betas(self, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        """Population betas implied by the generating covariance; columns are FACTOR_NAMES.

        market_beta = Cov(r, SPY) / Var(SPY); ir_beta likewise with TLT; spread_j =
        Cov(r, L - S) / Var(L - S); ridge_k = the population coefficients of r regressed on the
        six style ETFs jointly, Sigma_xx^-1 Sigma_xy (no shrinkage: estimated ridge betas with
        alpha=1 are shrunk slightly towards 0, and every estimate carries sampling error ~ its se).
        """
        loadings = self.loadings(symbols)
        sigma = ETF_DAILY_COVARIANCE
        cov_r = loadings.to_numpy() @ sigma  # (N, 8): Cov(r_i, ETF_k)
        out = pd.DataFrame(index=loadings.index, columns=list(FACTOR_NAMES), dtype="float64")
        out["market_beta"] = cov_r[:, _IDX_SPY] / sigma[_IDX_SPY, _IDX_SPY]
        out["ir_beta"] = cov_r[:, _IDX_TLT] / sigma[_IDX_TLT, _IDX_TLT]
        ridge = np.linalg.solve(sigma[np.ix_(_IDX_STYLE, _IDX_STYLE)], cov_r[:, _IDX_STYLE].T).T  # (N, 6)
        for j, spec in enumerate(RIDGE_FACTORS):
            assert spec.regressors == (RIDGE_ETFS[j],)
            out[spec.name] = ridge[:, j]
        for spec in SPREAD_FACTORS:
            a, b = (ETFS.index(e) for e in spec.regressors)
            var = sigma[a, a] + sigma[b, b] - 2 * sigma[a, b]
            out[spec.name] = (cov_r[:, a] - cov_r[:, b]) / var
        return out

    def listing_info(self, symbol: str) -> ListingInfo:
        (s,) = self._require_known([symbol])
        p = self._params([s])
        dates = _calendar_dates()
        last = int(p.last[0])
        return ListingInfo(
            symbol=s,
            first_session=dates[int(p.first[0])],
            last_session=None if last == len(dates) - 1 else dates[last],
            gap_rate=float(p.gap_rate[0]),
        )

    def gap_sessions(self, symbol: str, start: dt.date | str | None = None, end: dt.date | str | None = None) -> list[dt.date]:
        """Sessions in [start, end] inside the symbol's listing on which it has no row."""
        (s,) = self._require_known([symbol])
        p = self._params([s])
        w0, w1 = self._window(start, end)
        if w1 < w0 or p.gap_rate[0] == 0:
            return []
        t = np.arange(w0, w1 + 1)
        missing = self._gaps(p, np.array([0]), t)[0] & (t >= p.first[0]) & (t <= p.last[0])
        return list(_calendar_dates()[t[missing]])

    # -- generation -------------------------------------------------------------------------------

    @staticmethod
    def _window(start: dt.date | str | None, end: dt.date | str | None) -> tuple[int, int]:
        """Global session indices [w0, w1] of sessions in [start, end], clipped to the calendar."""
        idx = _calendar_index()
        w0 = 0 if start is None else _session_position(start, "left")
        w1 = len(idx) - 1 if end is None else _session_position(end, "right") - 1
        return w0, w1

    @staticmethod
    def _gaps(p: _Params, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Missing-row mask, shape (len(rows), len(t))."""
        out = np.zeros((len(rows), len(t)), dtype=bool)
        gappy = np.flatnonzero(p.gap_rate[rows] > 0)
        if len(gappy):
            u = _uniform(p.keys[rows[gappy]], _S_GAP, t.astype(np.uint64))
            out[gappy] = u < p.gap_rate[rows[gappy]][:, None]
        return out

    def _generate(self, p: _Params, rows: np.ndarray, w0: int, w1: int) -> dict[str, np.ndarray]:
        """Total returns and raw prices of symbols `rows` on sessions w0..w1, each array (n, W).

        Log closes are cumulated from each symbol's anchor session (the fixed anchor date, moved
        into its listing), so the closes on a session do not depend on the requested window.
        """
        etf = self._etf_returns()
        anchor = np.clip(_session_position(_ANCHOR_DATE), p.first[rows], p.last[rows])
        lo, hi = min(w0, int(anchor.min())), max(w1, int(anchor.max()))
        t = np.arange(lo, hi + 1)
        tu = t.astype(np.uint64)
        n = len(rows)

        # Total return: loadings @ ETF returns + idiosyncratic noise.     (n, S)
        ret = p.loadings[rows] @ etf[lo : hi + 1].T
        noisy = np.flatnonzero(p.idio_sd[rows] > 0)
        if len(noisy):
            ret[noisy] += p.idio_sd[rows[noisy]][:, None] * ndtri(_uniform(p.keys[rows[noisy]], _S_IDIO, tu))
        np.maximum(ret, -0.9, out=ret)  # a -30 sigma day; keeps log1p finite, never binds in practice

        split = np.ones((n, len(t)))
        splitters = np.flatnonzero(p.split_rate[rows] > 0)
        if len(splitters):
            keys = p.keys[rows[splitters]]
            event = _uniform(keys, _S_SPLIT, tu) < p.split_rate[rows[splitters]][:, None]
            ratio = 2.0 + np.floor(3.0 * _uniform(keys, _S_SPLIT_RATIO, tu))  # 2, 3 or 4 new per old
            split[splitters] = np.where(event, ratio, 1.0)

        payers = p.dividend_yield[rows] > 0
        pay_day = (t[None, :] % _DIVIDEND_PERIOD) == p.dividend_phase[rows][:, None]
        div_yield = np.where(pay_day & payers[:, None], p.dividend_yield[rows][:, None], 0.0)

        # close_t = close_(t-1) * (1 + r_t) / (split_t * (1 + y_t)), dividend_t = y_t * close_t,
        # which makes (close_t + dividend_t) * split_t / close_(t-1) = 1 + r_t.
        step = np.log1p(ret) - np.log(split) - np.log1p(div_yield)
        cum = np.cumsum(step, axis=1)
        cum -= cum[np.arange(n), anchor - lo][:, None]
        a, b = w0 - lo, w1 - lo + 1
        close = p.anchor_price[rows][:, None] * np.exp(cum[:, a:b])
        traded = (t[None, a:b] >= p.first[rows][:, None]) & (t[None, a:b] <= p.last[rows][:, None])
        return {
            "t": t[a:b],
            "ret": ret[:, a:b],
            "close": close,
            "dividend": div_yield[:, a:b] * close,
            "split": split[:, a:b],
            "traded": traded,
        }

    def fetch(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> FetchResult:
        valid, failures = split_valid_symbols(symbols)
        syms = [s for s in valid if self.knows(s)]
        failures.update({s: "unknown ticker" for s in valid if not self.knows(s)})
        w0, w1 = self._window(start, end)
        if not syms or w1 < w0:
            return FetchResult(empty_prices(), failures)

        p = self._params(syms)
        live = np.flatnonzero((p.first <= w1) & (p.last >= w0))  # listed at some point in the window
        dates = _calendar_dates()
        sym_arr = np.array(syms, dtype=object)
        float_cols = PRICE_COLUMNS[2:]
        sym_rows, sessions, blocks = [], [], []
        for c in range(0, len(live), _CHUNK):
            rows = live[c : c + _CHUNK]
            g = self._generate(p, rows, w0, w1)
            t = g["t"]
            ii, jj = np.nonzero(g["traded"] & ~self._gaps(p, rows, t))
            close = g["close"][ii, jj]
            # Plausible intraday range and volume around the close; they play no part in returns.
            keys, tu = p.keys[rows][ii][:, None], t[jj].astype(np.uint64)
            day_range = p.idio_sd[rows][ii] + 0.006
            block = np.empty((len(ii), len(float_cols)))
            block[:, 0] = open_ = close * (1.0 + day_range * (_uniform_pairs(keys, _S_OPEN, tu) - 0.5))
            block[:, 1] = np.maximum(open_, close) * (1.0 + 0.5 * day_range * _uniform_pairs(keys, _S_HIGH, tu))
            block[:, 2] = np.minimum(open_, close) * (1.0 - 0.5 * day_range * _uniform_pairs(keys, _S_LOW, tu))
            block[:, 3] = close
            block[:, 4] = np.nan
            block[:, 5] = np.round(p.volume_base[rows][ii] * (0.5 + _uniform_pairs(keys, _S_VOLUME, tu)))
            block[:, 6] = g["dividend"][ii, jj]
            block[:, 7] = g["split"][ii, jj]
            sym_rows.append(rows[ii])
            sessions.append(t[jj])
            blocks.append(block)
        if not blocks:
            return FetchResult(empty_prices(), failures)
        # Built around one float block so pandas does not copy 10,000 x 200 rows column by column.
        frame = pd.DataFrame(np.concatenate(blocks), columns=list(float_cols))
        frame.insert(0, "date", dates[np.concatenate(sessions)])
        frame.insert(0, "symbol", sym_arr[np.concatenate(sym_rows)])
        return FetchResult(frame, failures)

    def generated_total_returns(
        self, symbols: Sequence[str], start: dt.date | str, end: dt.date | str
    ) -> pd.DataFrame:
        """The generating daily total returns, index sessions (tz-naive), one column per symbol.

        NaN where the symbol is not listed; gap sessions keep their (unobservable) return.
        """
        syms = self._require_known(symbols)
        w0, w1 = self._window(start, end)
        index = _calendar_index()[w0 : w1 + 1]
        out = np.full((len(index), len(syms)), np.nan)
        if len(syms) and w1 >= w0:
            p = self._params(syms)
            for c in range(0, len(syms), _CHUNK):
                rows = np.arange(c, min(c + _CHUNK, len(syms)))
                g = self._generate(p, rows, w0, w1)
                out[:, rows] = np.where(g["traded"], g["ret"], np.nan).T
        return pd.DataFrame(out, index=index, columns=pd.Index(syms, name="symbol"))
