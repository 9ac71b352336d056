"""Random ground-truth causal models for the synthetic protocols (numpy RNG, then torch).

Graph: every off-diagonal edge present with probability p/(d−1) (p parents on average, cycles
allowed). Linear: weights ±U[0.5, 1.5], scaled by 0.9 until max Re eig(W) < −margin.
MLP (ours): φ = tanh, H = 4 units, A[j,i,h] = s_ij·U[0.5, 1.5] on edges, a ~ U[−2, 2],
v ~ U[0.5, 1.5]/H; A is scaled by 0.9 until the spectral radius of the gain bound
G[j,i] = Σ_h |v[j,h] A[j,i,h]| is < 1 − margin, which makes the drift a global contraction
(unique, unimodal-by-contraction stationary law, so Euler–Maruyama mixes fast).
Biases U[−1, 1], log noise scales U[−1, 0].
"""

from __future__ import annotations

import numpy as np
import torch

from ..core import LinearDrift, MLPDrift, max_real_eigenvalue

MLP_TRUTH_HIDDEN = 4


def random_graph(d: int, parents: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean adjacency [d, d], (i, j) = edge i → j, no self loops."""
    adj = rng.random((d, d)) < parents / (d - 1)
    np.fill_diagonal(adj, False)
    return adj


def _signed_uniform(rng, shape, low, high):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


def random_drift(
    d: int, sim: str, rng: np.random.Generator, *, parents: float = 2.0, margin: float = 0.2
) -> tuple[LinearDrift | MLPDrift, np.ndarray]:
    """A random ground-truth drift (float64, no gradients) and its boolean adjacency."""
    adj = random_graph(d, parents, rng)
    b = rng.uniform(-1, 1, d)
    log_sigma = rng.uniform(-1, 0, d)
    if sim == "linear":
        w = adj * _signed_uniform(rng, (d, d), 0.5, 1.5)  # w[i, j] = weight of i → j
        while max_real_eigenvalue(torch.from_numpy(w.T - np.eye(d))) >= -margin:
            w = 0.9 * w
        drift = LinearDrift(d).double()
        params = {"w_off": w.T}
    elif sim == "mlp":
        H = MLP_TRUTH_HIDDEN
        sign = rng.choice([-1.0, 1.0], size=(d, d))
        A = adj.T[..., None] * sign[..., None] * rng.uniform(0.5, 1.5, (d, d, H))  # [j, i, h]
        v = rng.uniform(0.5, 1.5, (d, H)) / H
        while np.abs(np.linalg.eigvals((np.abs(A) * v[:, None, :]).sum(-1))).max() >= 1 - margin:
            A = 0.9 * A
        drift = MLPDrift(d, hidden=H, activation="tanh").double()
        params = {"A": A, "a": rng.uniform(-2, 2, (d, H)), "v": v}
    else:
        raise ValueError(f"unknown ground truth {sim!r}; use 'linear' or 'mlp'")
    params.update(b=b, log_sigma=log_sigma)
    with torch.no_grad():
        for name, value in params.items():
            getattr(drift, name).copy_(torch.from_numpy(np.asarray(value, dtype=np.float64)))
    drift.requires_grad_(False)
    return drift, adj


def drift_parameters(drift) -> dict[str, np.ndarray]:
    """The drift's parameters as numpy arrays (for ``uns``)."""
    return {k: v.detach().cpu().numpy() for k, v in drift.named_parameters()}
