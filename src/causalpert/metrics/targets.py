"""Perturbation-target recovery metrics over (perturbation, gene) pairs."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata


def _binary_inputs(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Flatten and validate scores and binary labels of the same shape."""
    s_arr = np.asarray(scores, dtype=np.float64)
    l_arr = np.asarray(labels)
    if s_arr.shape != l_arr.shape:
        raise ValueError(
            f"scores has shape {s_arr.shape} but labels has {l_arr.shape}; pass matching arrays"
        )
    if s_arr.size == 0:
        raise ValueError("scores and labels are empty; pass at least one scored pair")
    if not np.all(np.isfinite(s_arr)):
        raise ValueError("scores contain NaN or inf; replace them with finite scores")
    if l_arr.dtype != np.bool_:
        l_num = l_arr.astype(np.float64)
        if not np.all((l_num == 0.0) | (l_num == 1.0)):
            raise ValueError("labels must be boolean or 0/1; binarise the true targets first")
        l_arr = l_num == 1.0
    y = l_arr.ravel()
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        raise ValueError(
            f"labels are all one class ({n_pos} positives of {y.size}); "
            "need both true targets and non-targets"
        )
    return s_arr.ravel(), y


def _average_precision(s: np.ndarray, y: np.ndarray) -> float:
    """AP = Σ_n (R_n − R_{n−1})·P_n over distinct thresholds (sklearn definition)."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last].astype(np.float64)
    precision = tps / (last + 1.0)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def target_auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve for target prediction (ties count half, Mann–Whitney).

    AUROC = (Σ_{i∈pos} rank_i − P(P+1)/2) / (P·N) with average ranks for ties.

    Args:
        scores: Target probabilities, any shape (e.g. [perturbations, genes]); flattened.
        labels: True-target indicators (bool or 0/1), same shape as scores.

    Returns:
        The AUROC in [0, 1] (higher is better).
    """
    s, y = _binary_inputs(scores, labels)
    ranks = rankdata(s, method="average")
    n_pos = float(y.sum())
    n_neg = float(y.size) - n_pos
    return float((ranks[y].sum() - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))


def target_auprc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Average precision for target prediction (sklearn ``average_precision_score``).

    AP = Σ_n (R_n − R_{n−1})·P_n over distinct score thresholds, descending; tied scores
    form a single threshold.

    Args:
        scores: Target probabilities, any shape (e.g. [perturbations, genes]); flattened.
        labels: True-target indicators (bool or 0/1), same shape as scores.

    Returns:
        The average precision in [0, 1] (higher is better).
    """
    s, y = _binary_inputs(scores, labels)
    return _average_precision(s, y)


def target_rank(scores: ArrayLike, target: int) -> float:
    """1-based rank of gene ``target`` among ``scores`` [d] (descending; ties averaged).

    rank = 1 + #{j : s_j > s_t} + ½ #{j ≠ t : s_j = s_t}; 1 is best, (d + 1)/2 is chance.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not 0 <= target < s.size:
        raise ValueError(f"target index {target} out of range for {s.size} genes")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or inf; replace them with finite scores")
    t = s[target]
    return float(1 + (s > t).sum() + 0.5 * ((s == t).sum() - 1))
