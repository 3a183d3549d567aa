"""Counter-based randomness (SplitMix64) and the draw of the factor ETFs' daily returns.

Every draw is a hash of (key, stream, index) rather than the next number of a sequential
generator: any symbol on any session can be drawn on its own, so a fetch of five symbols over one
month neither generates the rest of the universe nor depends on which other symbols or dates were
asked for, and a fetch of 10,000 symbols is a few array operations.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.special import ndtri

from symbol_pipeline.sources.synthetic.market import ETF_DAILY_COVARIANCE, ETF_DAILY_MEAN, ETFS

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STREAM_MUL = np.uint64(0xD1B54A32D192ED03)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53: the top 53 bits of a uint64 as a float in [0, 1)

# Streams: one per independent quantity.
S_PARAM, S_IDIO, S_SPLIT, S_SPLIT_RATIO, S_GAP, S_OPEN, S_HIGH, S_LOW, S_VOLUME = range(1, 10)
S_ETF = 100  # S_ETF + k: the k-th factor ETF


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, elementwise on uint64 (wrapping arithmetic is intended)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uniform(keys: np.ndarray, stream: int, index: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1): keys shape (N,), index shape (T,) -> (N, T); one draw per (key, index)."""
    with np.errstate(over="ignore"):
        k = _mix(np.asarray(keys, dtype=np.uint64) ^ (np.uint64(stream) * _STREAM_MUL))
        z = k[:, None] + np.asarray(index, dtype=np.uint64)[None, :] * _GOLDEN
        z = _mix(z)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * _TO_UNIT


def uniform_pairs(keys: np.ndarray, stream: int, index: np.ndarray) -> np.ndarray:
    """Like `uniform` but elementwise over broadcast (keys, index) pairs, e.g. the rows of a frame."""
    with np.errstate(over="ignore"):
        k = _mix(np.asarray(keys, dtype=np.uint64) ^ (np.uint64(stream) * _STREAM_MUL))
        z = _mix(k.reshape(-1) + np.asarray(index, dtype=np.uint64) * _GOLDEN)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * _TO_UNIT


def symbol_key(seed: int, symbol: str) -> int:
    """A stable 64-bit key for (seed, symbol); collisions across 10,000 names are negligible."""
    digest = hashlib.blake2b(f"{seed}:{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def etf_factor_returns(seed: int, n_sessions: int) -> np.ndarray:
    """Daily returns of the eight ETFs on global sessions 0..n_sessions-1, shape (n_sessions, 8).

    Drawn per session index from the seed, so a longer calendar (it grows with time) leaves the
    returns of existing sessions unchanged.
    """
    key = np.array([symbol_key(seed, "__etf_factors__")], dtype=np.uint64)
    index = np.arange(n_sessions, dtype=np.uint64)
    z = np.column_stack([ndtri(uniform(key, S_ETF + k, index)[0]) for k in range(len(ETFS))])  # iid N(0, 1)
    chol = np.linalg.cholesky(ETF_DAILY_COVARIANCE)
    return ETF_DAILY_MEAN[None, :] + z @ chol.T
