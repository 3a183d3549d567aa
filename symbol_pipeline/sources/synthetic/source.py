"""`SyntheticMarket`, the price source: raw closes, dividends and splits generated on demand.

Every stock's daily total return is a fixed linear mix of the eight ETF returns plus independent
idiosyncratic noise. Raw closes carry quarterly dividends and occasional splits such that

    (close_t + dividend_t) * split_ratio_t / close_(t-1) - 1 == total return_t

to float precision, which is what a pipeline that stores raw closes must get right.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtri

from symbol_pipeline.lib.symbols import validate_symbol
from symbol_pipeline.sources.base import (
    PRICE_COLUMNS,
    FetchResult,
    PriceSource,
    UnknownSymbolError,
    empty_prices,
    split_valid_symbols,
)
from symbol_pipeline.sources.synthetic.generator import (
    S_GAP,
    S_HIGH,
    S_IDIO,
    S_LOW,
    S_OPEN,
    S_SPLIT,
    S_SPLIT_RATIO,
    S_VOLUME,
    etf_factor_returns,
    uniform,
    uniform_pairs,
)
from symbol_pipeline.sources.synthetic.market import (
    ANCHOR_DATE,
    CATALOGUE,
    DIVIDEND_PERIOD,
    ETFS,
    UNIVERSE_RE,
    calendar_dates,
    calendar_index,
    session_position,
    session_window,
    universe_symbol,
)
from symbol_pipeline.sources.synthetic.parameters import SymbolParameters, symbol_parameters
from symbol_pipeline.sources.synthetic.truth import ListingInfo, population_betas

_CHUNK = 1000  # symbols generated at once, to bound memory


def _gap_mask(p: SymbolParameters, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Missing-row mask of symbols `rows` on global sessions `t`, shape (len(rows), len(t))."""
    out = np.zeros((len(rows), len(t)), dtype=bool)
    gappy = np.flatnonzero(p.gap_rate[rows] > 0)
    if len(gappy):
        u = uniform(p.keys[rows[gappy]], S_GAP, t.astype(np.uint64))
        out[gappy] = u < p.gap_rate[rows[gappy]][:, None]
    return out


class SyntheticMarket(PriceSource):
    """Prices of a synthetic market: 8 factor ETFs, a `SYN0001`.. universe and a real-ticker catalogue.

    seed: every number follows from (seed, symbol); n_symbols: size of `universe()`.
    `adj_close` is NaN: closes are raw, use close, dividend and split_ratio.
    """

    name = "synthetic"
    adjusted_only = False

    def __init__(self, seed: int, n_symbols: int) -> None:
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
        return [universe_symbol(i) for i in range(1, self.n_symbols + 1)]

    def available_symbols(self) -> list[str]:
        return [*ETFS, *self.universe(), *CATALOGUE]

    def knows(self, symbol: str) -> bool:
        if symbol in CATALOGUE or symbol in ETFS:
            return True
        m = UNIVERSE_RE.match(symbol)
        return bool(m) and 1 <= int(m.group(1)) <= self.n_symbols and symbol == universe_symbol(int(m.group(1)))

    def _require_known(self, symbols: Iterable[str]) -> list[str]:
        out = []
        for raw in symbols:
            s = validate_symbol(raw)
            if not self.knows(s):
                raise UnknownSymbolError(f"{s}: unknown ticker for {self!r}")
            out.append(s)
        return out

    def _params(self, symbols: Sequence[str]) -> SymbolParameters:
        return symbol_parameters(self.seed, symbols)

    # -- the true answers --------------------------------------------------------------------------

    def loadings(self, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        """Weights of each symbol's total return on the eight ETF returns (columns ETFS)."""
        syms = self.available_symbols() if symbols is None else self._require_known(symbols)
        p = self._params(syms)
        return pd.DataFrame(p.loadings, index=pd.Index(syms, name="symbol"), columns=list(ETFS))

    def true_betas(self, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        """Population betas of `symbols` (default: all), columns FACTOR_NAMES; see `population_betas`."""
        return population_betas(self.loadings(symbols))

    def listing_info(self, symbol: str) -> ListingInfo:
        (s,) = self._require_known([symbol])
        p = self._params([s])
        dates = calendar_dates()
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
        w0, w1 = session_window(start, end)
        if w1 < w0 or p.gap_rate[0] == 0:
            return []
        t = np.arange(w0, w1 + 1)
        missing = _gap_mask(p, np.array([0]), t)[0] & (t >= p.first[0]) & (t <= p.last[0])
        return list(calendar_dates()[t[missing]])

    def generated_total_returns(
        self, symbols: Sequence[str], start: dt.date | str, end: dt.date | str
    ) -> pd.DataFrame:
        """The generating daily total returns, index sessions (tz-naive), one column per symbol.

        NaN where the symbol is not listed; gap sessions keep their (unobservable) return.
        """
        syms = self._require_known(symbols)
        w0, w1 = session_window(start, end)
        index = calendar_index()[w0 : w1 + 1]
        out = np.full((len(index), len(syms)), np.nan)
        if len(syms) and w1 >= w0:
            p = self._params(syms)
            for c in range(0, len(syms), _CHUNK):
                rows = np.arange(c, min(c + _CHUNK, len(syms)))
                g = self._generate(p, rows, w0, w1)
                out[:, rows] = np.where(g["traded"], g["ret"], np.nan).T
        return pd.DataFrame(out, index=index, columns=pd.Index(syms, name="symbol"))

    # -- generation -------------------------------------------------------------------------------

    def _etf_returns(self) -> np.ndarray:
        """Daily ETF returns over the whole calendar, shape (T_calendar, 8); drawn once, cached."""
        if self._etf_returns_cache is None:
            self._etf_returns_cache = etf_factor_returns(self.seed, len(calendar_index()))
        return self._etf_returns_cache

    def _generate(self, p: SymbolParameters, rows: np.ndarray, w0: int, w1: int) -> dict[str, np.ndarray]:
        """Total returns and raw prices of symbols `rows` on sessions w0..w1, each array (n, W).

        Log closes are cumulated from each symbol's anchor session (the fixed anchor date, moved
        into its listing), so the closes on a session do not depend on the requested window.
        """
        etf = self._etf_returns()
        anchor = np.clip(session_position(ANCHOR_DATE), p.first[rows], p.last[rows])
        lo, hi = min(w0, int(anchor.min())), max(w1, int(anchor.max()))
        t = np.arange(lo, hi + 1)
        tu = t.astype(np.uint64)
        n = len(rows)

        # Total return: loadings @ ETF returns + idiosyncratic noise.     (n, S)
        ret = p.loadings[rows] @ etf[lo : hi + 1].T
        noisy = np.flatnonzero(p.idio_sd[rows] > 0)
        if len(noisy):
            ret[noisy] += p.idio_sd[rows[noisy]][:, None] * ndtri(uniform(p.keys[rows[noisy]], S_IDIO, tu))
        np.maximum(ret, -0.9, out=ret)  # a -30 sigma day; keeps log1p finite, never binds in practice

        split = np.ones((n, len(t)))
        splitters = np.flatnonzero(p.split_rate[rows] > 0)
        if len(splitters):
            keys = p.keys[rows[splitters]]
            event = uniform(keys, S_SPLIT, tu) < p.split_rate[rows[splitters]][:, None]
            ratio = 2.0 + np.floor(3.0 * uniform(keys, S_SPLIT_RATIO, tu))  # 2, 3 or 4 new per old
            split[splitters] = np.where(event, ratio, 1.0)

        payers = p.dividend_yield[rows] > 0
        pay_day = (t[None, :] % DIVIDEND_PERIOD) == p.dividend_phase[rows][:, None]
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
        w0, w1 = session_window(start, end)
        if not syms or w1 < w0:
            return FetchResult(empty_prices(), failures)

        p = self._params(syms)
        live = np.flatnonzero((p.first <= w1) & (p.last >= w0))  # listed at some point in the window
        dates = calendar_dates()
        sym_arr = np.array(syms, dtype=object)
        float_cols = PRICE_COLUMNS[2:]
        sym_rows, sessions, blocks = [], [], []
        for c in range(0, len(live), _CHUNK):
            rows = live[c : c + _CHUNK]
            g = self._generate(p, rows, w0, w1)
            t = g["t"]
            ii, jj = np.nonzero(g["traded"] & ~_gap_mask(p, rows, t))
            close = g["close"][ii, jj]
            # Plausible intraday range and volume around the close; they play no part in returns.
            keys, tu = p.keys[rows][ii][:, None], t[jj].astype(np.uint64)
            day_range = p.idio_sd[rows][ii] + 0.006
            block = np.empty((len(ii), len(float_cols)))
            block[:, 0] = open_ = close * (1.0 + day_range * (uniform_pairs(keys, S_OPEN, tu) - 0.5))
            block[:, 1] = np.maximum(open_, close) * (1.0 + 0.5 * day_range * uniform_pairs(keys, S_HIGH, tu))
            block[:, 2] = np.minimum(open_, close) * (1.0 - 0.5 * day_range * uniform_pairs(keys, S_LOW, tu))
            block[:, 3] = close
            block[:, 4] = np.nan
            block[:, 5] = np.round(p.volume_base[rows][ii] * (0.5 + uniform_pairs(keys, S_VOLUME, tu)))
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
