"""How well the style model's daily volatility forecast is calibrated on the real prices (a report, not a gate).

    .venv/bin/python benchmarks/risk_calibration.py [--prices ../shared/data/real-prices] [--portfolios 200]
        [--size 20] [--seed 0] [--horizon 21] [--bootstrap 10000] [--model style]

At each month-end t with enough history (every stock's betas estimable, at least 60 sessions
for the factor covariance, `horizon` sessions after t in the files), `--portfolios` portfolios of
`--size` stocks drawn at random once (fixed seed), equal weights held fixed (rebalanced daily),
get a forecast daily volatility σ̂_t from the functions the risk endpoint uses: betas and residual
variances from the project's kernels (`lib.factor_model.compute_factor_exposures`), the factor
covariance and decomposition from `lib.risk`. The outcome is

    z_t = r_(t→t+h) / (√h σ̂_t),   r the portfolio's compounded return over the next h sessions.

A calibrated forecast has std(z) ≈ 1 (above: risk understated; below: overstated). The portfolios
overlap heavily (20 of 25 names) and share each month's market move, so the evidence is about one
draw per month-end, not per portfolio: the band is a bootstrap over month-ends (all portfolios of
a month-end resampled together), printed beside the normal-theory band 1 ± 1.96 / √(2 M) for M
independent month-ends.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from symbol_pipeline.lib import risk as risk_lib
from symbol_pipeline.lib import stress as stress_lib
from symbol_pipeline.lib.factor_model import compute_factor_exposures
from symbol_pipeline.lib.factors import FACTOR_BY_NAME, REGRESSOR_ETFS
from symbol_pipeline.lib.returns import total_returns
from symbol_pipeline.lib.sessions import sessions_between
from symbol_pipeline.sources.csv_dir import CsvDirectorySource

DEFAULT_PRICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-prices"


def load_returns(directory: Path) -> pd.DataFrame:
    """Daily total returns (sessions × symbols) of every file, the pipeline's way: the CSV source,
    then `total_returns` on the NYSE session grid."""
    source = CsvDirectorySource(directory)
    symbols = source.available_symbols()
    first = pd.Timestamp("1990-01-01").date()
    prices = source.fetch(symbols, first, pd.Timestamp.today().date()).prices
    grid = sessions_between(prices["date"].min(), prices["date"].max())
    return total_returns(prices, grid)


def forecast_volatility(returns: pd.DataFrame, stocks: list[str], day: pd.Timestamp, weights: np.ndarray,
                        model: risk_lib.RiskModel) -> np.ndarray | None:
    """σ̂ (P,), the daily volatility forecast of each portfolio at `day`, or None without enough history."""
    history = returns.loc[:day]
    specs = [FACTOR_BY_NAME[f] for f in model.factors]
    rows = compute_factor_exposures(history[stocks], history[list(REGRESSOR_ETFS)], day, factors=specs)
    # The stored (capped) betas, as the endpoint reads them.
    betas = (rows.pivot(index="symbol", columns="factor", values="beta")
             .reindex(index=stocks, columns=list(model.factors)).to_numpy(dtype=float))  # (S, K)
    s2 = rows.groupby("symbol")["residual_variance"].first().reindex(stocks).to_numpy(dtype=float)  # (S,)
    if not (np.isfinite(betas).all() and np.isfinite(s2).all()):
        return None
    window = history[list(REGRESSOR_ETFS)].iloc[-stress_lib.COVARIANCE_SESSIONS:]  # 252 sessions ending at t
    try:
        cov = risk_lib.model_covariance(window, model)
    except ValueError:
        return None
    result = risk_lib.decompose(weights, betas, s2, cov, np.ones(len(weights)))
    return np.sqrt(result.total_variance)


def month_ends(index: pd.DatetimeIndex) -> list[pd.Timestamp]:
    """The last session of each month in the index."""
    frame = pd.Series(index, index=index)
    return list(frame.groupby([index.year, index.month]).max())


def rms(z: np.ndarray) -> float:
    """√mean(z²): the forecast has no mean term, so a drift shows up here and not in std(z)."""
    return float(np.sqrt(np.mean(z * z)))


def bootstrap_band(z_by_month: list[np.ndarray], statistic, draws: int, seed: int) -> tuple[float, float]:
    """2.5 % and 97.5 % of statistic(z) when month-ends (with all their portfolios) are resampled."""
    rng = np.random.default_rng(seed)
    m = len(z_by_month)
    stats = np.empty(draws)
    for b in range(draws):  # a few thousand draws of ~15 months: cheap
        pick = rng.integers(0, m, m)
        stats[b] = statistic(np.concatenate([z_by_month[i] for i in pick]))
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prices", type=Path, default=DEFAULT_PRICES)
    parser.add_argument("--portfolios", type=int, default=200)
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--horizon", type=int, default=21)
    parser.add_argument("--bootstrap", type=int, default=10_000)
    parser.add_argument("--model", choices=[m.name for m in risk_lib.RISK_MODELS], default=risk_lib.HEADLINE_MODEL)
    args = parser.parse_args(argv)

    returns = load_returns(args.prices)
    stocks = [s for s in returns.columns if s not in REGRESSOR_ETFS]
    model = risk_lib.RISK_MODEL_BY_NAME[args.model]
    rng = np.random.default_rng(args.seed)
    weights = np.zeros((args.portfolios, len(stocks)))  # (P, S), equal weights, fixed for the whole run
    for p in range(args.portfolios):
        weights[p, rng.choice(len(stocks), args.size, replace=False)] = 1.0 / args.size

    h = args.horizon
    stock_returns = returns[stocks].to_numpy()  # (T, S)
    rows, z_by_month = [], []
    for day in month_ends(returns.index):
        t = returns.index.get_loc(day)
        if t + h >= len(returns.index):
            continue
        sigma = forecast_volatility(returns, stocks, day, weights, model)
        if sigma is None:
            continue
        future = stock_returns[t + 1 : t + 1 + h]  # (h, S), the next h sessions
        realised = np.prod(1.0 + np.nan_to_num(future) @ weights.T, axis=0) - 1.0  # (P,)
        z = realised / (np.sqrt(h) * sigma)
        z_by_month.append(z)
        rows.append((day.date(), float(np.sqrt(252) * sigma.mean()), float(realised.mean()), float(z.mean()),
                     float(z.std(ddof=1))))

    print(f"{args.model} model, {args.portfolios} portfolios of {args.size} of {len(stocks)} stocks (seed "
          f"{args.seed}), equal weights, horizon {h} sessions, prices {args.prices.name}")
    print(f"{'month-end':>10}  {'forecast vol (ann.)':>19}  {'mean return':>11}  {'mean z':>7}  {'z spread':>8}")
    for day, vol, ret, zm, zs in rows:
        print(f"{day!s:>10}  {vol:19.4f}  {ret:11.4f}  {zm:7.3f}  {zs:8.3f}")
    months = len(z_by_month)
    if not months:
        print("no month-end with enough history and a full horizon after it")
        return
    pooled = np.concatenate(z_by_month)
    low, high = bootstrap_band(z_by_month, lambda z: z.std(ddof=1), args.bootstrap, args.seed)
    rms_low, rms_high = bootstrap_band(z_by_month, rms, args.bootstrap, args.seed)
    half = 1.96 / np.sqrt(2 * months)
    print(f"bias statistic std(z) = {pooled.std(ddof=1):.3f} over {len(pooled)} (portfolio, month-end) pairs, "
          f"{months} month-ends ({rows[0][0]} to {rows[-1][0]})")
    print(f"95% band, bootstrap over month-ends ({args.bootstrap} draws): [{low:.3f}, {high:.3f}]")
    print(f"mean z = {pooled.mean():.3f}; root mean square of z (no demeaning) = {rms(pooled):.3f}, "
          f"bootstrap band [{rms_low:.3f}, {rms_high:.3f}]")
    print(f"95% band for a calibrated forecast with {months} independent month-ends: "
          f"[{1 - half:.3f}, {1 + half:.3f}]")
    print(f"std of the month-end means of z (one draw per month-end): {np.std([z.mean() for z in z_by_month], ddof=1):.3f}")


if __name__ == "__main__":
    main()
