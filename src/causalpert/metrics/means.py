"""Mean-level metrics between predicted cells X̂ [n, d] and observed cells X [m, d]."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .distributions import _pair


def mean_rmse(x_pred: ArrayLike, x_obs: ArrayLike) -> float:
    """Root mean squared error between predicted and observed mean expression.

    RMSE = sqrt(mean_g (mean(X̂)_g − mean(X)_g)²).

    Args:
        x_pred: Predicted cells [n, d].
        x_obs: Observed cells [m, d].

    Returns:
        The RMSE over genes (lower is better).
    """
    xp, xo = _pair(x_pred, x_obs, 1)
    diff = xp.mean(axis=0) - xo.mean(axis=0)
    return float(np.sqrt(np.mean(diff**2)))


def delta_pearson(x_pred: ArrayLike, x_obs: ArrayLike, *, mu_control: ArrayLike) -> float:
    """Pearson correlation over genes of predicted and observed shifts from control.

    r = corr_g(mean(X̂) − mu0, mean(X) − mu0). Returns nan if either delta vector is
    constant over genes, up to 1e-12 relative rounding (correlation undefined).

    Args:
        x_pred: Predicted cells [n, d].
        x_obs: Observed cells [m, d].
        mu_control: Control mean expression mu0 [d].

    Returns:
        The Pearson correlation in [-1, 1] (higher is better), or nan.
    """
    xp, xo = _pair(x_pred, x_obs, 1)
    mu0 = np.asarray(mu_control, dtype=np.float64)
    if mu0.ndim != 1 or mu0.shape[0] != xo.shape[1]:
        raise ValueError(
            f"mu_control must have shape [{xo.shape[1]}] (one value per gene), got {mu0.shape}; "
            "pass the control mean over cells"
        )
    if not np.all(np.isfinite(mu0)):
        raise ValueError("mu_control contains NaN or inf; recompute the control mean")
    if xo.shape[1] < 2:
        raise ValueError("delta_pearson needs at least 2 genes; pass more gene columns")
    dp = xp.mean(axis=0) - mu0
    do = xo.mean(axis=0) - mu0
    scale = max(np.abs(mu0).max(), np.abs(dp + mu0).max(), np.abs(do + mu0).max())
    if np.ptp(dp) <= 1e-12 * scale or np.ptp(do) <= 1e-12 * scale:
        return float("nan")
    dp = dp - dp.mean()
    do = do - do.mean()
    denom = np.sqrt(np.dot(dp, dp) * np.dot(do, do))
    if denom == 0.0:
        return float("nan")
    return float(np.clip(np.dot(dp, do) / denom, -1.0, 1.0))
