"""The GIM network q_φ(I | γ, c) on tensors: target probabilities and dose-dependent shifts.

    π(γ) = sigmoid(g(γ))                          what a drug hits does not depend on dose
    u(γ, c) = a(γ) · H(c; K(γ), n(γ))             Hill head: monotone, H(0) = 0, saturating
    κ(γ, c) = κ̄(r(γ)) · H(c; K(γ), n(γ))          activity log factor (optional), same curve
    u(γ, c) = MLP([t(γ), c])                       generic head (ablation)

γ is standardised by the caller. The trunk t(γ) is the identity (heads linear in γ) or one
hidden SiLU layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core import hill

RAW_KEYS = ("logits", "amplitude", "log_ec50", "hill_raw")
DOSE_RESPONSE = ("log_ec50", "hill_raw")  # where and how steeply the Hill curve rises

#: activity log factors are bounded above by ln 3 (an activator at most triples a protein's
#: outgoing edges, so an intervened linear drift stays stable); inhibition is unbounded
ACTIVITY_MAX = math.log(3.0)


def _hill(raw: dict[str, torch.Tensor], doses: torch.Tensor) -> torch.Tensor:
    """H(c; K, n) [K, d] with K = exp(log_ec50) and n = 0.5 + 4 · sigmoid(hill_raw − ln 2)
    ∈ (0.5, 4.5) (n = 1.83 at hill_raw = 0)."""
    K = raw["log_ec50"].clamp(-8, 8).exp()
    n = 0.5 + 4.0 * torch.sigmoid(raw["hill_raw"] - 0.6931)
    return hill(doses[:, None], K, n)


def hill_shift(raw: dict[str, torch.Tensor], doses: torch.Tensor) -> torch.Tensor:
    """u = a · H(c; K, n); raw tensors [K, d], doses [K]."""
    return raw["amplitude"] * _hill(raw, doses)


def bounded_activity(r: torch.Tensor) -> torch.Tensor:
    """κ̄ = U − softplus(U − r), U = ``ACTIVITY_MAX``: ≈ r below U, never above it."""
    return ACTIVITY_MAX - torch.nn.functional.softplus(ACTIVITY_MAX - r)


def hill_activity(raw: dict[str, torch.Tensor], doses: torch.Tensor) -> torch.Tensor | None:
    """κ = κ̄(r) · H(c; K, n), the dose-dependent activity log factor (None without one)."""
    if "activity" not in raw:
        return None
    return bounded_activity(raw["activity"]) * _hill(raw, doses)


class LatentInterventions(nn.Module):
    """Variant A: free intervention parameters per training perturbation (tied across doses by
    the Hill curve), each [P, d]; the feature heads are fitted to them afterwards."""

    def __init__(self, n_perturbations: int, d: int, *, dose_scale: float = 1.0,
                 target_prior: float = 0.1, activity: bool = False):
        super().__init__()
        shape = (n_perturbations, d)
        self.keys = RAW_KEYS + (("activity",) if activity else ())
        if activity:  # r of κ̄(r): starts at 0, no change of activity
            self.activity = nn.Parameter(torch.zeros(shape))
        self.logits = nn.Parameter(torch.full(shape, math.log(target_prior / (1 - target_prior))))
        self.amplitude = nn.Parameter(torch.zeros(shape))
        self.log_ec50 = nn.Parameter(torch.full(shape, math.log(max(dose_scale, 1e-6))))
        self.hill_raw = nn.Parameter(torch.zeros(shape))

    def raw(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k)[idx] for k in self.keys}

    def forward(self, idx: torch.Tensor, doses: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Target logits, shifts u and activity log factors κ (or None), each [K, d], for
        perturbation indices idx [K] and doses [K]."""
        raw = self.raw(idx)
        return raw["logits"], hill_shift(raw, doses), hill_activity(raw, doses)


class InterventionNet(nn.Module):
    """Maps features [K, p] and doses [K] to target logits [K, d] and shifts u [K, d].

    Args:
        p: feature dimension. d: genes.
        hidden: trunk width (0: no trunk, heads linear in γ).
        head: ``"hill"`` or ``"mlp"``.
        dose_scale: typical dose; the EC50 starts there.
        target_prior: initial π of every gene.
    """

    def __init__(self, p: int, d: int, *, hidden: int = 0, head: str = "hill",
                 dose_scale: float = 1.0, target_prior: float = 0.1):
        super().__init__()
        self.head = head
        self.trunk = (nn.Sequential(nn.Linear(p, hidden), nn.SiLU()) if hidden
                      else nn.Identity())
        width = hidden or p
        self.target = nn.Linear(width, d)
        nn.init.zeros_(self.target.weight)
        nn.init.constant_(self.target.bias, math.log(target_prior / (1 - target_prior)))
        if head == "hill":
            self.amplitude = nn.Linear(width, d)
            self.log_ec50 = nn.Linear(width, d)
            self.hill_raw = nn.Linear(width, d)
            for lin in (self.amplitude, self.log_ec50, self.hill_raw):
                nn.init.zeros_(lin.weight)
            nn.init.zeros_(self.amplitude.bias)
            nn.init.constant_(self.log_ec50.bias, math.log(max(dose_scale, 1e-6)))
            nn.init.zeros_(self.hill_raw.bias)  # n starts at 0.5 + 4/3 ≈ 1.8
        elif head == "mlp":
            self.effect = nn.Sequential(nn.Linear(width + 1, 64), nn.SiLU(), nn.Linear(64, d))
            nn.init.zeros_(self.effect[-1].weight)
            nn.init.zeros_(self.effect[-1].bias)
            self.dose_scale = dose_scale
        else:
            raise ValueError(f"head must be 'hill' or 'mlp', got {head!r}")

    def raw(self, F: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unconstrained per-gene outputs [K, d]: logits, amplitude, log_ec50, hill_raw."""
        t = self.trunk(F)
        return {"logits": self.target(t), "amplitude": self.amplitude(t),
                "log_ec50": self.log_ec50(t), "hill_raw": self.hill_raw(t)}

    def forward(self, F: torch.Tensor, doses: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Target logits [K, d], shifts u [K, d] and None (no activity head) for features
        F [K, p] and doses [K]."""
        t = self.trunk(F)
        logits = self.target(t)
        if self.head == "hill":
            u = hill_shift(self.raw(F), doses)
        else:
            c = doses[:, None] / self.dose_scale
            u = self.effect(torch.cat([t, c], dim=-1)) * (doses[:, None] > 0)
        return logits, u, None
