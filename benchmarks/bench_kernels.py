"""Time the factor kernels against the per-symbol loop they replace.

    python benchmarks/bench_kernels.py [--symbols 10000] [--loop-symbols 200]

Random but realistic data (181 sessions, 8 correlated ETFs, stocks loading on them, a few
percent of returns missing). Times ``compute_factor_exposures`` for one date, all 12 factors
(best of 3), then the loop a user would write: statsmodels OLS for market, rates and the four
spreads plus scikit-learn StandardScaler + Ridge, fitted per symbol on numpy arrays, on
`--loop-symbols` symbols and scaled to `--symbols`. Prints both, their ratio and peak RSS.

The BLAS settings are whatever the environment says, and are printed with the kernel
OpenBLAS picked: some machines set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which slow a current
numpy (unset both together, in the benchmark command only, to compare). On a 2-core machine
shared with other work ``OPENBLAS_NUM_THREADS=1`` is steadier. Neither this script nor the tests
change the environment.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info

from symbol_pipeline.lib.factor_model import compute_factor_exposures
from symbol_pipeline.lib.factors import FACTORS, REGRESSOR_ETFS, RIDGE_ALPHA, RIDGE_ETFS

SESSIONS = 181


def make_market(n_symbols: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2024-01-02", periods=SESSIONS)
    market = rng.normal(0.0004, 0.011, (SESSIONS, 1))
    etf = market + rng.normal(0, 0.005, (SESSIONS, len(REGRESSOR_ETFS)))
    etf[:, REGRESSOR_ETFS.index("TLT")] = rng.normal(0, 0.009, SESSIONS) - 0.2 * market[:, 0]
    loadings = rng.normal(1.0 / len(REGRESSOR_ETFS), 0.2, (len(REGRESSOR_ETFS), n_symbols))
    stocks = etf @ loadings + rng.normal(0, 0.018, (SESSIONS, n_symbols))
    stocks[rng.random(stocks.shape) < 0.03] = np.nan  # scattered missing days
    late = rng.random(n_symbols) < 0.02  # recent listings: history too short for some windows
    stocks[: SESSIONS - 45, late] = np.nan
    symbols = [f"S{i:05d}" for i in range(n_symbols)]
    return (
        pd.DataFrame(stocks, index=index, columns=symbols),
        pd.DataFrame(etf, index=index, columns=list(REGRESSOR_ETFS)),
    )


def reference_loop(stocks: np.ndarray, etf: pd.DataFrame) -> None:
    """What a user writes without kernels: one statsmodels / sklearn fit per symbol and factor."""
    regressors = {}
    for spec in FACTORS:
        window = etf.iloc[-spec.window :]
        if spec.family == "ridge":
            regressors["ridge"] = (spec, window[list(RIDGE_ETFS)].to_numpy())
        elif len(spec.regressors) == 2:
            regressors[spec.name] = (spec, (window[spec.regressors[0]] - window[spec.regressors[1]]).to_numpy())
        else:
            regressors[spec.name] = (spec, window[spec.regressors[0]].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in range(stocks.shape[1]):
            for spec, x in regressors.values():
                y = stocks[-spec.window :, n]
                if x.ndim == 2:
                    rows = np.isfinite(y) & np.isfinite(x).all(axis=1)
                    if rows.sum() < spec.min_observations:
                        continue
                    scaler = StandardScaler().fit(x[rows])
                    Z = scaler.transform(x[rows])
                    model = Ridge(alpha=RIDGE_ALPHA).fit(Z, y[rows])
                    _ = model.coef_ / scaler.scale_, model.score(Z, y[rows])
                else:
                    rows = np.isfinite(y) & np.isfinite(x)
                    if rows.sum() < spec.min_observations:
                        continue
                    fit = sm.OLS(y[rows], sm.add_constant(x[rows])).fit()
                    _ = fit.params, fit.rsquared, fit.bse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--loop-symbols", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    env = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    settings = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in env)
    print(f"cpus: {os.cpu_count()}  env: {settings}")
    for pool in threadpool_info():  # which BLAS kernel actually runs (OPENBLAS_CORETYPE can force a slow one)
        print(f"blas: {pool.get('internal_api')} {pool.get('version')} {pool.get('architecture')}, "
              f"{pool.get('num_threads')} threads")
    stocks, etf = make_market(args.symbols)
    date = stocks.index[-1]
    print(f"data: {args.symbols} symbols x {SESSIONS} sessions, {etf.shape[1]} ETFs, "
          f"{stocks.isna().to_numpy().mean():.1%} missing returns")

    compute_factor_exposures(stocks, etf, date)  # warm-up: imports, page faults
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = compute_factor_exposures(stocks, etf, date)
        times.append(time.perf_counter() - start)
    kernel = min(times)
    print(f"kernels: compute_factor_exposures, 12 factors x {args.symbols} symbols = {len(result)} rows: "
          f"best of {args.repeat} {kernel:.3f} s (all: {', '.join(f'{t:.3f}' for t in times)})")
    print("  quality counts:", result["quality"].value_counts().to_dict())

    n_loop = min(args.loop_symbols, args.symbols)
    sample = stocks.to_numpy()[:, :n_loop]
    start = time.perf_counter()
    reference_loop(sample, etf)
    loop = time.perf_counter() - start
    loop_scaled = loop * args.symbols / n_loop
    print(f"loop: statsmodels OLS x6 + StandardScaler/Ridge per symbol: {loop:.2f} s for {n_loop} symbols "
          f"-> {loop_scaled:.1f} s scaled to {args.symbols}")
    print(f"speed-up: {loop_scaled / kernel:.0f}x  (targets: kernels <= 0.5 s, >= 100x)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    print(f"peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
