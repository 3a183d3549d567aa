"""Regressions of N symbols at once: OLS with intercept and the scikit-learn ridge pipeline.

Every symbol has its own observation mask (the rows where its return and the regressors all
exist), so the kernels work with masked moments: per-column means, then sums of centred
products over the (W, N) mask, as a few array reductions and one batched (N, K, K) solve. No
per-symbol model is fitted, and OLS regressions that share a window share y's moments
(`ols_betas_many`). The results
agree with statsmodels ``OLS(y, add_constant(x))`` and with scikit-learn's
``StandardScaler`` + ``Ridge`` fitted symbol by symbol (docs/methodology.md), which is what the
tests hold them to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class OLSResult:
    """One simple regression per column; every array has shape (N,).

    beta, alpha, r_squared, std_error are float64, NaN where not estimated (fewer than
    `min_obs` observations, or a regressor without variance). residual_variance is
    RSS / (n − 2), statsmodels' ``mse_resid``, NaN where not estimated or n <= 2. nobs is the
    number of usable rows whether or not a beta was estimated. zero_variance is True where there
    were enough rows but the regressor was constant over them.
    """

    beta: np.ndarray
    alpha: np.ndarray
    r_squared: np.ndarray
    std_error: np.ndarray
    nobs: np.ndarray
    zero_variance: np.ndarray
    residual_variance: np.ndarray


@dataclass
class RidgeResult:
    """One joint ridge per symbol.

    betas : (N, K) float64, raw-scale coefficients (divided by the scaler's scale), uncapped.
    alpha : (N,) intercept on the raw scale. r_squared : (N,) in-sample R² (``Ridge.score``).
    residual_variance : (N,) RSS / (n − K − 1) of the uncapped fit's residuals
    ``y − alpha − X betas`` over the symbol's rows, NaN where not estimated or n <= K + 1.
    nobs : (N,) int64 usable rows. zero_variance : (N,) bool, enough rows but some regressor
    constant over them. Estimates are NaN where nobs < min_obs or zero_variance.
    """

    betas: np.ndarray
    alpha: np.ndarray
    r_squared: np.ndarray
    nobs: np.ndarray
    zero_variance: np.ndarray
    residual_variance: np.ndarray


def _as_2d(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"y must be (W, N), got shape {y.shape}")
    return y


# A column whose computed variance is below this share of its largest squared value is checked
# for being exactly constant. The moments are uncentred sums (see below), so a constant column's
# variance comes out as rounding noise of order n·eps·x², never exactly 0; the threshold sits far
# above that noise and far below any real variance, and the exact test settles the few below it.
_CONSTANT_SUSPECT = 1e-8


def _constant_columns(values: np.ndarray, mask: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """True per column where every masked value is equal (or none is masked).

    values : (W,) shared or (W, N); mask : (W, N) bool; variance : (N,) computed masked variance.
    Only columns with a suspiciously small variance get the exact max == min test.
    """
    if values.ndim == 1:
        # One shared column: its peak over all finite rows bounds every symbol's peak.
        values = values[:, None]
        peak = np.abs(values[np.isfinite(values)]).max(initial=0.0)
    else:
        peak = np.where(mask, np.abs(values), 0.0).max(axis=0, initial=0.0)  # (N,)
    suspect = ~(variance > _CONSTANT_SUSPECT * peak * peak)  # NaN variance (no rows) is suspect too
    constant = np.zeros(mask.shape[1], dtype=bool)
    cols = np.flatnonzero(suspect)
    if len(cols):
        v = values if values.shape[1] == 1 else values[:, cols]
        m = mask[:, cols]
        high = np.where(m, v, -np.inf).max(axis=0)
        low = np.where(m, v, np.inf).min(axis=0)
        constant[cols] = ~(high > low)
    return constant


@dataclass
class _CentredY:
    """y's moments over the rows where it and the regressor are both finite; (W, N) or (N,)."""

    mask: np.ndarray  # (W, N) bool
    weights: np.ndarray  # (W, N) float64, the mask as 0/1 for matrix products
    nobs: np.ndarray  # (N,) int64
    ybar: np.ndarray  # (N,)
    yc: np.ndarray  # (W, N), y − ȳ on the mask, 0 off it
    syy: np.ndarray  # (N,)


def _centre_y(y: np.ndarray, mask: np.ndarray) -> _CentredY:
    weights = mask.astype(np.float64)
    nobs = mask.sum(axis=0, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ybar = np.where(mask, y, 0.0).sum(axis=0) / nobs
    yc = np.where(mask, y - ybar, 0.0)
    return _CentredY(mask, weights, nobs, ybar, yc, np.einsum("wn,wn->n", yc, yc))


def _ols_from_moments(
    cy: _CentredY, sum_x: np.ndarray, sum_xx: np.ndarray, sxy: np.ndarray, shift, x: np.ndarray, min_obs: int
) -> OLSResult:
    """Finish the regression from the shifted-x sums: sum_x, sum_xx, sxy (N,), x shifted by `shift`."""
    nobs = cy.nobs
    n = nobs.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        xbar_s = sum_x / n  # (N,) masked mean of the shifted x
        sxx = sum_xx - n * xbar_s * xbar_s  # centred: shifting keeps this cancellation small
        enough = nobs >= min_obs
        zero_variance = enough & _constant_columns(x, cy.mask, sxx / n)
        ok = enough & ~zero_variance
        beta = np.where(ok, sxy / sxx, np.nan)
        alpha = np.where(ok, cy.ybar - beta * (xbar_s + shift), np.nan)
        sse = np.maximum(cy.syy - beta * sxy, 0.0)
        r_squared = np.where(ok, 1.0 - sse / cy.syy, np.nan)
        dof = np.where(nobs > 2, nobs - 2, 1)
        residual_variance = np.where(ok & (nobs > 2), sse / dof, np.nan)  # statsmodels' mse_resid
        std_error = np.sqrt(residual_variance / sxx)
    return OLSResult(
        beta=beta, alpha=alpha, r_squared=r_squared, std_error=std_error, nobs=nobs, zero_variance=zero_variance,
        residual_variance=residual_variance,
    )


def _ols_shared_x(cy: _CentredY, x: np.ndarray, min_obs: int) -> OLSResult:
    """One regressor x (W,) for every column; cy's mask must be finite(y) & finite(x)."""
    fx = np.isfinite(x)
    # x is shifted by one mean over all its rows, so that the uncentred sums below are sums of
    # small numbers. Sxy needs no correction for each column's own mean of x because the
    # centred y sums to 0 over the column's rows.
    shift = x[fx].mean() if fx.any() else 0.0
    xs = np.where(fx, x - shift, 0.0)  # (W,)
    # einsum, not BLAS: a threaded gemv on a busy 2-core machine costs ten times its work here.
    sum_x = np.einsum("w,wn->n", xs, cy.weights)  # (N,)
    sum_xx = np.einsum("w,wn->n", xs * xs, cy.weights)  # (N,)
    sxy = np.einsum("w,wn->n", xs, cy.yc)  # (N,)
    return _ols_from_moments(cy, sum_x, sum_xx, sxy, shift, x, min_obs)


def ols_betas(y: np.ndarray, x: np.ndarray, min_obs: int) -> OLSResult:
    """OLS with intercept, ``y[:, n] = alpha_n + beta_n * x[:, n] + e``, for every column n.

    Parameters
    ----------
    y : ndarray, shape (W, N)
        Dependent returns, NaN where missing.
    x : ndarray, shape (W,) or (W, N)
        Regressor, one shared column or one per symbol; NaN where missing.
    min_obs : int
        Fewest usable rows (y and x both finite) for an estimate.

    Returns
    -------
    OLSResult
        std_error = sqrt(SSE / (n - 2) / Sxx) (NaN when n <= 2); r_squared = 1 - SSE / SST, NaN
        only when y is constant over the rows (SST = 0), as in statsmodels; an r² of 0 stays 0.
    """
    y = _as_2d(y)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.shape[0] != y.shape[0] or (x.ndim == 2 and x.shape != y.shape) or x.ndim > 2:
        raise ValueError(f"x of shape {x.shape} does not match y of shape {y.shape}")
    if x.ndim == 1:
        return ols_betas_many(y, x[:, None], min_obs)[0]

    fx = np.isfinite(x)  # (W, N)
    cy = _centre_y(y, np.isfinite(y) & fx)
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.nan_to_num(np.where(fx, x, 0.0).sum(axis=0) / fx.sum(axis=0))  # (N,)
    xs = np.where(cy.mask, x - shift, 0.0)  # (W, N)
    sum_x = xs.sum(axis=0)
    sum_xx = np.einsum("wn,wn->n", xs, xs)
    sxy = np.einsum("wn,wn->n", xs, cy.yc)
    return _ols_from_moments(cy, sum_x, sum_xx, sxy, shift, x, min_obs)


def ols_betas_many(y: np.ndarray, X: np.ndarray, min_obs: int) -> list[OLSResult]:
    """One simple OLS per column of X, each against every column of y: ``ols_betas(y, X[:, f])``.

    y : ndarray, shape (W, N); X : ndarray, shape (W, F), regressors shared by all symbols.
    Regressors with the same missing rows (usually none) share y's masked moments, the bulk of
    the work, so F regressions cost little more than one.
    """
    y = _as_2d(y)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be (W, F) with W = {y.shape[0]}, got shape {X.shape}")
    finite_y = np.isfinite(y)  # (W, N)
    by_pattern: dict[bytes, _CentredY] = {}
    results = []
    for f in range(X.shape[1]):
        fx = np.isfinite(X[:, f])  # (W,)
        key = fx.tobytes()
        if key not in by_pattern:
            by_pattern[key] = _centre_y(y, finite_y if fx.all() else finite_y & fx[:, None])
        results.append(_ols_shared_x(by_pattern[key], X[:, f], min_obs))
    return results


def ridge_betas(y: np.ndarray, X: np.ndarray, alpha: float, min_obs: int) -> RidgeResult:
    """Joint ridge of every column of `y` on the K regressors of `X`, scikit-learn's way.

    Per symbol n, over its rows (y_n and every regressor finite): standardise X with its
    mean and population std over those rows, fit ``Ridge(alpha, fit_intercept=True)`` on the
    raw y_n, divide the coefficients by the std. In closed form, with S the centred masked
    Gram matrix (K, K), s = sqrt(diag(S) / n) (the scaler's scale_) and D = diag(s):
    ``(D⁻¹ S D⁻¹ + alpha I) w = D⁻¹ Sxy``, betas = w / s; intercept = ȳ − x̄·betas.

    Parameters
    ----------
    y : ndarray, shape (W, N)
        Dependent returns, NaN where missing.
    X : ndarray, shape (W, K)
        Regressors shared by all symbols; a row with any NaN is unusable for everyone.
    alpha : float
        Ridge penalty on the standardised coefficients, not scaled by the number of rows.
    min_obs : int
        Fewest usable rows for an estimate.

    Returns
    -------
    RidgeResult
    """
    y = _as_2d(y)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be (W, K) with W = {y.shape[0]}, got shape {X.shape}")
    W, N = y.shape
    K = X.shape[1]

    rows = np.isfinite(X).all(axis=1)  # (W,)
    mask = np.isfinite(y) & rows[:, None]  # (W, N)
    m = mask.astype(np.float64)  # (W, N)
    nobs = np.count_nonzero(mask, axis=0).astype(np.int64)  # (N,)
    n = nobs.astype(np.float64)
    # As in ols_betas: X shifted by one mean, y centred exactly per column.
    shift = X[rows].mean(axis=0) if rows.any() else np.zeros(K)  # (K,)
    Xs = np.where(rows[:, None], X - shift, 0.0)  # (W, K)

    with np.errstate(invalid="ignore", divide="ignore"):
        mu = (m.T @ Xs) / n[:, None]  # (N, K) masked means of the shifted X
        outer = (Xs[:, :, None] * Xs[:, None, :]).reshape(W, K * K)  # (W, K*K)
        gram = (m.T @ outer).reshape(N, K, K) - n[:, None, None] * mu[:, :, None] * mu[:, None, :]  # (N, K, K)
        ybar = np.where(mask, y, 0.0).sum(axis=0) / n  # (N,)
        yc = np.where(mask, y - ybar, 0.0)  # (W, N)
        sxy = yc.T @ Xs  # (N, K)
        syy = np.einsum("wn,wn->n", yc, yc)  # (N,)
        variance = np.einsum("nkk->nk", gram) / n[:, None]  # (N, K) StandardScaler.var_

        enough = nobs >= min_obs
        constant = np.zeros((N, K), dtype=bool)
        for k in range(K):  # K is 6: a loop over regressors, not over symbols
            constant[:, k] = _constant_columns(Xs[:, k], mask, variance[:, k])
        zero_variance = enough & constant.any(axis=1)
        ok = enough & ~zero_variance

        scale = np.where(ok[:, None], np.sqrt(variance), 1.0)  # (N, K)
        corr = gram / (scale[:, :, None] * scale[:, None, :])  # (N, K, K) = D⁻¹ S D⁻¹
        corr[~ok] = np.eye(K)
        rhs = np.where(ok[:, None], sxy / scale, 0.0)  # (N, K)
        w = np.linalg.solve(corr + alpha * np.eye(K), rhs[:, :, None])[:, :, 0]  # (N, K) standardised
        betas = np.where(ok[:, None], w / scale, np.nan)  # (N, K)
        intercept = ybar - np.einsum("nk,nk->n", mu + shift, betas)  # raw-scale means of X

        # SSE = Syy − 2 b·Sxy + bᵀ S b over the symbol's rows.
        b = np.nan_to_num(betas)
        quad = np.einsum("nk,nk->n", (gram @ b[:, :, None])[:, :, 0], b)
        sse = np.maximum(syy - 2.0 * np.einsum("nk,nk->n", b, sxy) + quad, 0.0)
        r_squared = np.where(ok, 1.0 - sse / syy, np.nan)
        # The centred residuals are y − intercept − Xβ: the intercept absorbs the means exactly.
        dof = nobs - K - 1
        residual_variance = np.where(ok & (dof > 0), sse / np.where(dof > 0, dof, 1), np.nan)
    return RidgeResult(
        betas=betas,
        alpha=np.where(ok, intercept, np.nan),
        r_squared=r_squared,
        nobs=nobs,
        zero_variance=zero_variance,
        residual_variance=residual_variance,
    )


def cap_betas(values: np.ndarray, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """Clip to ±cap; returns (capped values, flag where |value| > cap). NaN stays NaN, flag False."""
    values = np.asarray(values, dtype=np.float64)
    flag = np.abs(values) > cap
    return np.where(flag, np.sign(values) * cap, values), flag
