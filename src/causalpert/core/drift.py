"""Drift functions f_θ of the stationary diffusion dx = f(x) dt + diag(σ) dW.

Both models fix the self-reversion at −x_j (diag(W) = −1), which fixes the time scale, and
carry per-variable log noise scales s with σ = exp(s). ``graph()`` returns the weighted adjacency
with entry (i, j) = strength of edge i → j.
"""

from __future__ import annotations

import torch
from torch import nn


def activity_inputs(x: torch.Tensor, activity: torch.Tensor,
                    origin: torch.Tensor | None = None) -> torch.Tensor:
    """What each variable passes to the other mechanisms at activity α: o + α ⊙ (x − o).

    ``origin`` o is where the variable is inactive: 0 in the data's own units (the default),
    −μ₀/s₀ for a model fitted in control-standardised coordinates. Scaling around o rather than
    around the control mean is what lets an inhibitor move its children's means.
    """
    return x * activity if origin is None else origin + activity * (x - origin)


def _offdiag_mask(d: int, *, device=None, dtype=None) -> torch.Tensor:
    return 1.0 - torch.eye(d, device=device, dtype=dtype)


class Drift(nn.Module):
    """Shared interface: ``forward(x) [..., d] -> f(x) [..., d]``, ``log_sigma [d]``."""

    d: int
    log_sigma: nn.Parameter

    def graph(self) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def sparsity(self) -> torch.Tensor:
        """Group lasso on each variable's incoming and outgoing edges (self-edges excluded).

        R = (1/d) Σ_j Σ_{i≠j} ‖θ_{i→j}‖₂ + (1/d) Σ_i ‖θ_{i→·}‖₂: every incoming edge of a
        variable is its own group (edge sparsity), and all outgoing edges of a variable form one
        group (few regulators), as in stadion's ``both`` regulariser.
        """
        g = self._edge_groups()  # [source, target] or [source, target, H]
        sq = g.pow(2).sum(-1) if g.dim() == 3 else g.pow(2)
        incoming = (sq + 1e-12).sqrt().sum() / self.d
        outgoing = (sq.sum(1) + 1e-12).sqrt().sum() / self.d
        return incoming + outgoing

    def _edge_groups(self) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class LinearDrift(Drift):
    """Linear drift f(x) = W x + b with diag(W) = −1.

    Edge i → j has weight W[j, i]. The off-diagonal entries are free parameters; the diagonal
    of the stored tensor is ignored, so it is never updated.

    Args:
        d: number of variables.
        init_scale: standard deviation of the random off-diagonal initialisation.
        init_log_sigma: initial log noise scale.
        generator: torch generator for the initialisation.
    """

    def __init__(
        self,
        d: int,
        *,
        init_scale: float = 1e-3,
        init_log_sigma: float = 0.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.d = d
        w = torch.randn(d, d, generator=generator) * init_scale
        self.w_off = nn.Parameter(w * _offdiag_mask(d))
        self.b = nn.Parameter(torch.zeros(d))
        self.log_sigma = nn.Parameter(torch.full((d,), float(init_log_sigma)))
        self.register_buffer("mask", _offdiag_mask(d), persistent=False)

    @property
    def W(self) -> torch.Tensor:
        """Drift matrix [d, d] with unit negative diagonal."""
        return self.w_off * self.mask - torch.eye(self.d, dtype=self.w_off.dtype,
                                                   device=self.w_off.device)

    def forward(self, x: torch.Tensor, activity: torch.Tensor | None = None,
                origin: torch.Tensor | None = None) -> torch.Tensor:
        """f(x) = x Wᵀ + b for x [..., d].

        ``activity`` α (broadcastable to x): variable i enters the other mechanisms as
        o_i + α_i (x_i − o_i) (``activity_inputs``), f(x) = A (o + α ⊙ (x − o)) − x + b with
        A = W + I: every outgoing edge of i scaled by α_i; the self-decay −x is not an edge.
        """
        if activity is None:
            return x @ self.W.T + self.b
        inputs = activity_inputs(x, activity, origin)
        return inputs @ (self.w_off * self.mask).T - x + self.b

    def intervened_b(self, activity: torch.Tensor, origin: torch.Tensor | None) -> torch.Tensor:
        """Biases [K, d] of the contexts with activities α [K, d]: b + A ((1 − α) ⊙ o)."""
        if origin is None:
            return self.b.expand(activity.shape[0], -1)
        return self.b + ((1 - activity) * origin) @ (self.w_off * self.mask).T

    def intervened_W(self, activity: torch.Tensor) -> torch.Tensor:
        """Drift matrices [K, d, d] of the contexts with activities α [K, d]: A diag(α_k) − I."""
        eye = torch.eye(self.d, dtype=self.w_off.dtype, device=self.w_off.device)
        return (self.w_off * self.mask)[None] * activity[:, None, :] - eye

    def graph(self) -> torch.Tensor:
        """Weighted adjacency [d, d]: (i, j) = W[j, i], zero diagonal."""
        return (self.w_off * self.mask).T.detach()

    def _edge_groups(self) -> torch.Tensor:
        return (self.w_off * self.mask).T  # [source, target]


class MLPDrift(Drift):
    """Per-variable MLP drift f_j(x) = −x_j + b_j + Σ_h v[j,h] φ(Σ_{i≠j} A[j,i,h] x_i + a[j,h]).

    All d mechanisms are evaluated at once with one einsum (no loop over genes). Edge i → j has
    strength ‖A[j, i, :]‖₂.

    Args:
        d: number of variables.
        hidden: hidden units H per mechanism.
        activation: ``"tanh"`` or ``"sigmoid"``.
        init_scale: standard deviation of the random initialisation of A and v.
        init_log_sigma: initial log noise scale.
        generator: torch generator for the initialisation.
    """

    def __init__(
        self,
        d: int,
        *,
        hidden: int = 8,
        activation: str = "tanh",
        init_scale: float = 0.1,
        init_log_sigma: float = 0.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if activation not in ("tanh", "sigmoid"):
            raise ValueError(f"activation must be 'tanh' or 'sigmoid', got {activation!r}")
        self.d, self.hidden, self.activation = d, hidden, activation
        self.A = nn.Parameter(torch.randn(d, d, hidden, generator=generator) * init_scale / d**0.5)
        self.a = nn.Parameter(torch.zeros(d, hidden))
        self.v = nn.Parameter(torch.randn(d, hidden, generator=generator) * init_scale)
        self.b = nn.Parameter(torch.zeros(d))
        self.log_sigma = nn.Parameter(torch.full((d,), float(init_log_sigma)))
        self.register_buffer("mask", _offdiag_mask(d)[..., None], persistent=False)

    def _phi(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z) if self.activation == "tanh" else torch.sigmoid(z)

    def forward(self, x: torch.Tensor, activity: torch.Tensor | None = None,
                origin: torch.Tensor | None = None) -> torch.Tensor:
        """f(x) for x [..., d]; ``activity`` α (broadcastable to x) feeds o + α ⊙ (x − o) to the
        other mechanisms (``activity_inputs``), the self-decay −x stays.

        One matmul gives all pre-activations in an [h, j] layout, [N, H·d], so the sum over
        hidden units runs over a middle axis (fast), not a short last axis.
        """
        d, H = self.d, self.hidden
        A = (self.A * self.mask).permute(1, 2, 0).reshape(d, H * d)  # [i, (h j)]
        flat = x.reshape(-1, d)
        inputs = (flat if activity is None
                  else activity_inputs(x, activity, origin).reshape(-1, d))
        pre = torch.addmm(self.a.T.reshape(H * d), inputs, A).view(-1, H, d)
        out = (self._phi(pre) * self.v.T).sum(-2)
        return (-flat + self.b + out).view(x.shape)

    def graph(self) -> torch.Tensor:
        """Weighted adjacency [d, d]: (i, j) = ‖A[j, i, :]‖₂, zero diagonal."""
        return (self.A * self.mask).norm(dim=-1).T.detach()

    def _edge_groups(self) -> torch.Tensor:
        return (self.A * self.mask).permute(1, 0, 2)  # [source, target, H]


DRIFTS: dict[str, type[Drift]] = {"linear": LinearDrift, "mlp": MLPDrift}
