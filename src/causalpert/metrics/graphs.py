"""Causal-graph recovery metrics on square adjacency matrices [d, d] (entry i, j = edge i→j)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .targets import _average_precision, _binary_inputs


def _square(x: ArrayLike, name: str) -> np.ndarray:
    """Validate a finite square matrix [d, d] with d >= 2."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square [d, d] matrix, got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} has {arr.shape[0]} nodes; a graph needs at least 2 nodes")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; replace them with finite values")
    return arr


def _pair(a: ArrayLike, b: ArrayLike, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    pa, pb = _square(a, name_a), _square(b, name_b)
    if pa.shape != pb.shape:
        raise ValueError(
            f"{name_a} has shape {pa.shape} but {name_b} has {pb.shape}; use the same node order"
        )
    return pa, pb


def graph_auprc(scores: ArrayLike, true_adjacency: ArrayLike) -> float:
    """Average precision of edge scores against the true graph, off-diagonal entries only.

    Score = |scores_ij|, label = (true_ij != 0), i != j; AP = Σ_n (R_n − R_{n−1})·P_n
    (sklearn ``average_precision_score`` definition, ties form one threshold).

    Args:
        scores: Edge strengths [d, d] (sign ignored).
        true_adjacency: True adjacency [d, d]; nonzero = edge.

    Returns:
        The average precision in [0, 1] (higher is better).
    """
    s, t = _pair(scores, true_adjacency, "scores", "true_adjacency")
    off = ~np.eye(s.shape[0], dtype=bool)
    s_flat, y = _binary_inputs(np.abs(s[off]), t[off] != 0.0)
    return _average_precision(s_flat, y)


def shd(pred_adjacency: ArrayLike, true_adjacency: ArrayLike, *, threshold: float = 0.0) -> float:
    """Structural Hamming distance on off-diagonal entries.

    Predicted edge i→j iff |pred_ij| > threshold; true edge iff true_ij != 0. SHD counts the
    unordered node pairs {i, j} whose edge state (none, i→j, j→i, both) differs: a missing or
    extra edge counts 1, a reversed edge (i→j predicted, only j→i true) counts 1, not 2.
    Equivalent to CDT's ``SHD(double_for_anticausal=False)``.

    Args:
        pred_adjacency: Predicted edge strengths [d, d].
        true_adjacency: True adjacency [d, d]; nonzero = edge.
        threshold: Non-negative cut-off on |pred| for an edge to count as predicted.

    Returns:
        The SHD as a float (lower is better).
    """
    p, t = _pair(pred_adjacency, true_adjacency, "pred_adjacency", "true_adjacency")
    thr = float(threshold)
    if not np.isfinite(thr) or thr < 0.0:
        raise ValueError(f"threshold must be a non-negative finite float, got {threshold}")
    off = ~np.eye(p.shape[0], dtype=bool)
    diff = ((np.abs(p) > thr) != (t != 0.0)) & off
    pair_diff = np.triu(diff | diff.T, k=1)
    return float(pair_diff.sum())
