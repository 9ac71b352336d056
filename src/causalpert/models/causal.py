"""Fitting the causal model with known intervention targets (the stadion setting).

Each context k has known targets m_k and free shifts u_k (and optionally log-scales ℓ_k); the
drift θ and the u_k are fitted jointly by minimising

    L = w₀ · KDS(D₀; θ, ∅) + mean_{k ∈ batch} KDS(D_k; θ, (m_k, u_k, ℓ_k)) + λ_G · R(θ)
        [+ λ_u · mean_k ‖m_k ⊙ u_k‖₁ / d]

over minibatches of contexts and cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core import DRIFTS, Drift, Interventions, kds
from ..data.backed import BackedRows
from ..data.contexts import Contexts
from .config import FitConfig
from .training import History, train


def median_bandwidth(x: torch.Tensor, *, max_cells: int = 1000, seed: int = 0) -> float:
    """Median pairwise Euclidean distance of (a seeded subsample of) cells x [n, d]; the median
    of the non-zero distances if most pairs are identical cells (sparse counts, constant genes),
    1 if all are (a bandwidth of 0 would make every kernel NaN)."""
    g = torch.Generator().manual_seed(seed)
    if x.shape[0] > max_cells:
        x = x[torch.randperm(x.shape[0], generator=g)[:max_cells]]
    dist = torch.cdist(x.double(), x.double())
    iu = torch.triu_indices(x.shape[0], x.shape[0], offset=1)
    dist = dist[iu[0], iu[1]]
    h = float(dist.median())
    if not h > 0:
        dist = dist[dist > 0]
        h = float(dist.median()) if len(dist) else 1.0
    return h


def resolve_bandwidth(contexts: Contexts, config: FitConfig) -> float:
    if config.bandwidth == "median":
        return median_bandwidth(contexts.cells(contexts.control))
    h = float(config.bandwidth)
    if not h > 0:
        raise ValueError(f"bandwidth must be positive, got {h}")
    return h


def make_drift(causal: str, d: int, config: FitConfig, generator: torch.Generator) -> Drift:
    """A fresh drift of kind ``causal`` ('linear' or 'mlp')."""
    if causal not in DRIFTS:
        raise ValueError(f"unknown causal model {causal!r}; choose one of {sorted(DRIFTS)}")
    if causal == "mlp":
        return DRIFTS[causal](d, hidden=config.hidden, activation=config.activation,
                              generator=generator)
    return DRIFTS[causal](d, generator=generator)


def warm_start_drift(drift: Drift, control: torch.Tensor) -> None:
    """b ← control mean and σ ← √(2 var) — the stationary moments of f(x) = −x + b."""
    with torch.no_grad():
        drift.b.copy_(control.mean(0))
        drift.log_sigma.copy_(0.5 * torch.log(2 * control.var(0).clamp_min(1e-6)))


def standardise(contexts: Contexts, *, inplace: bool = False, floor: float = 0.25
                ) -> tuple[torch.Tensor, torch.Tensor, Contexts]:
    """Control mean μ₀, scale s [d] and the contexts in coordinates (x − μ₀) / s (``inplace``:
    overwrite the cells of ``contexts``, which the caller must own; saves one copy of X).

    s is the control sd, floored at ``floor`` × the pooled within-context sd
    (``Contexts.within_sd``) for in-memory cells: a gene silent in the control cells (common
    in sparse screens; 97 of Norman 2019's 200 most variable genes) would otherwise be
    divided by ≈ 0 and blow the fit up. Genes expressed in control keep s = s₀.
    A diagonal rescaling keeps a stationary diffusion of the same kind (W' = S⁻¹ W S keeps
    diag −1 and the sparsity pattern), and puts every gene on one scale for the kernel.
    """
    mu0, s0 = contexts.control_moments()
    if floor > 0 and not isinstance(contexts.x, BackedRows):
        s0 = torch.maximum(s0, floor * contexts.within_sd())
    return mu0, s0, contexts.standardised(mu0, s0, inplace=inplace)


def graph_in_data_units(drift: Drift, s0: torch.Tensor) -> torch.Tensor:
    """Adjacency of a drift fitted in standardised units: linear weights become
    W[j, i] = W'[j, i] s_j / s_i; MLP edge strengths stay in standardised units."""
    G = drift.graph()
    if isinstance(drift, DRIFTS["linear"]):
        G = G * s0[None, :] / s0[:, None]
    return G


@dataclass
class CausalFit:
    """Result of ``fit_causal``: the drift, the fitted per-context interventions, diagnostics."""

    drift: Drift
    interventions: Interventions
    bandwidth: float
    history: History

    def graph(self) -> np.ndarray:
        """Weighted adjacency [d, d], (i, j) = strength of edge i → j."""
        return self.drift.graph().cpu().numpy()


def fit_causal(
    contexts: Contexts,
    targets,
    *,
    causal: str = "linear",
    config: FitConfig | None = None,
    seed: int = 0,
    progress: bool | None = None,
) -> CausalFit:
    """Fit a stationary-diffusion causal model to contexts with known intervention targets.

    Args:
        contexts: cells grouped by context (control + perturbed).
        targets: known targets [K, d] (bool), row ``contexts.control`` must be all False.
        causal: ``"linear"`` or ``"mlp"``.
        config: training knobs (``FitConfig()`` by default).
        seed: seeds initialisation and minibatches.
        progress: show a progress bar (default: on unless CAUSALPERT_PROGRESS=0).

    Returns:
        ``CausalFit`` with ``graph()``, fitted interventions and the loss history.
    """
    config = config or FitConfig()
    K, d = contexts.n_contexts, contexts.n_genes
    m = torch.as_tensor(np.asarray(targets), dtype=torch.float32)
    if m.shape != (K, d):
        raise ValueError(f"targets must be [{K}, {d}] (contexts × genes), got {tuple(m.shape)}")
    if m[contexts.control].any():
        raise ValueError("the control context cannot have intervention targets")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    drift = make_drift(causal, d, config, g)
    h = resolve_bandwidth(contexts, config)

    shift = torch.zeros(K, d)
    if config.warm_start:
        warm_start_drift(drift, contexts.cells(contexts.control))
        means = contexts.means()
        shift = (means - means[contexts.control]) * m
    shift = torch.nn.Parameter(shift)
    log_scale = torch.nn.Parameter(torch.zeros(K, d)) if config.learn_scales else None
    params = [*drift.parameters(), shift] + ([log_scale] if log_scale is not None else [])

    perturbed = torch.tensor([k for k in range(K) if k != contexts.control])
    ctrl = torch.tensor([contexts.control])
    B = min(config.batch_contexts, len(perturbed))

    def context_kds(idx: torch.Tensor, n_cells: int) -> torch.Tensor:
        x = contexts.sample(idx, n_cells, generator=g)
        iv = Interventions(m[idx], shift[idx], None if log_scale is None else log_scale[idx])
        f = drift(x) + iv.drift_shift()[:, None, :]
        sigma2 = torch.exp(2 * iv.log_sigma(drift.log_sigma))
        return kds(x, f, sigma2, bandwidth=h, estimator=config.estimator)

    def loss_fn(step: int) -> dict[str, torch.Tensor]:
        k_ctrl = context_kds(ctrl, config.control_cells).mean()
        batch = perturbed[torch.randperm(len(perturbed), generator=g)[:B]]
        k_pert = context_kds(batch, config.cells_per_context).mean() if B else k_ctrl * 0
        sparsity = drift.sparsity()
        loss = config.control_weight * k_ctrl + k_pert + config.lambda_graph * sparsity
        terms = {"kds_control": k_ctrl, "kds_perturbed": k_pert, "sparsity": sparsity}
        if config.lambda_shift > 0:
            terms["shift_l1"] = (shift[batch] * m[batch]).abs().sum(-1).mean() / d
            loss = loss + config.lambda_shift * terms["shift_l1"]
        return {"loss": loss, **terms}

    hist = train(params, loss_fn, steps=config.steps, lr=config.lr, log_every=config.log_every,
                 description=f"fitting {causal} causal model", progress=progress)
    fitted = Interventions(m, shift.detach(), None if log_scale is None else log_scale.detach())
    return CausalFit(drift=drift.eval(), interventions=fitted, bandwidth=h, history=hist)
