"""Calibration of probabilities against binary truth: reliability, ECE, temperature.

A probability p is calibrated when, among the pairs given p, a share p is true. With equal-width
bins B_1 … B_M of [0, 1], the reliability curve is (mean p, share true) per bin and

    ECE = Σ_m |B_m| / n · |mean_{B_m} p − mean_{B_m} y|

(Naeini et al. 2015; Guo et al. 2017 use the same with M = 15; here M = 10, the last bin
closed). Temperature scaling p_T = σ(logit(p) / T) is the one-parameter fix (T > 1 softens
over-confident probabilities); ``fit_temperature`` minimises the log loss over T.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .targets import _binary_inputs

_CLIP = 1e-6


def _probabilities(p: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    try:
        s, t = _binary_inputs(p, y)
    except ValueError as exc:
        if "all one class" not in str(exc):
            raise
        s = np.asarray(p, dtype=np.float64).ravel()  # one class is fine for calibration
        t = np.asarray(y).astype(np.float64).ravel() == 1.0
    if s.min() < 0 or s.max() > 1:
        raise ValueError("probabilities must lie in [0, 1]; pass probabilities, not scores")
    return s, t


def reliability_curve(p: ArrayLike, y: ArrayLike, bins: int = 10) -> dict[str, np.ndarray]:
    """Per equal-width bin of p, arrays [bins] ``lo``, ``hi``, ``count``, ``mean_p``,
    ``share_true`` (empty bins kept with count 0 and NaN means; ``pd.DataFrame(curve)`` for a
    table)."""
    s, t = _probabilities(p, y)
    if bins < 1:
        raise ValueError(f"bins must be ≥ 1, got {bins}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(which, weights=s, minlength=bins) / count
        share = np.bincount(which, weights=t.astype(float), minlength=bins) / count
    return {"lo": edges[:-1], "hi": edges[1:], "count": count, "mean_p": mean_p,
            "share_true": share}


def expected_calibration_error(p: ArrayLike, y: ArrayLike, bins: int = 10) -> float:
    """ECE = Σ_m |B_m|/n · |mean p − share true| over equal-width bins (module docstring)."""
    curve = reliability_curve(p, y, bins)
    full = curve["count"] > 0
    w = curve["count"][full] / curve["count"].sum()
    return float((w * np.abs(curve["mean_p"][full] - curve["share_true"][full])).sum())


def apply_temperature(p: ArrayLike, temperature: float) -> np.ndarray:
    """σ(logit(p) / T), p clipped to [1e-6, 1 − 1e-6] so 0 and 1 stay finite."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    q = np.clip(np.asarray(p, dtype=np.float64), _CLIP, 1 - _CLIP)
    return 1.0 / (1.0 + np.exp(-np.log(q / (1 - q)) / temperature))


def fit_temperature(p: ArrayLike, y: ArrayLike) -> float:
    """T > 0 minimising the mean log loss of σ(logit(p) / T) against y (bounded scalar
    search over log T ∈ [−5, 5])."""
    from scipy.optimize import minimize_scalar

    s, t = _probabilities(p, y)

    def nll(log_t: float) -> float:
        q = np.clip(apply_temperature(s, float(np.exp(log_t))), _CLIP, 1 - _CLIP)
        return float(-np.mean(np.where(t, np.log(q), np.log1p(-q))))

    return float(np.exp(minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded").x))
