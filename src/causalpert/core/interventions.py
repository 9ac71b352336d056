"""Atomic interventions I = (m, u, ℓ, κ) applied to many contexts at once.

    f_I(x) = f(x; α) + m ⊙ u       σ_I = σ ⊙ exp(m ⊙ ℓ)       α = exp(m ⊙ κ)

u shifts a target's own drift (its level); κ, optional, changes its *activity*: every
outgoing edge of target j is scaled by α_j = e^{κ_j} (κ < 0: an inhibitor of the protein's
activity, whose effect shows on its children while its own level may not move).

Every tensor carries a leading context axis [K, d]; ``m`` may be relaxed (in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Interventions:
    """Interventions for K contexts.

    Attributes:
        targets: m [K, d], binary or relaxed in [0, 1].
        shift: u [K, d], drift shift of each targeted variable.
        log_scale: ℓ [K, d] or None (no change of the noise scale).
        activity: κ [K, d], log factor on each target's outgoing edges, or None.
    """

    targets: torch.Tensor
    shift: torch.Tensor
    log_scale: torch.Tensor | None = None
    activity: torch.Tensor | None = None

    def __post_init__(self):
        if self.targets.dim() != 2 or self.targets.shape != self.shift.shape:
            raise ValueError(
                f"targets and shift must both be [K, d]; got {tuple(self.targets.shape)} and "
                f"{tuple(self.shift.shape)}"
            )
        for name in ("log_scale", "activity"):
            t = getattr(self, name)
            if t is not None and t.shape != self.shift.shape:
                raise ValueError(f"{name} must be [K, d] like shift; got {tuple(t.shape)}")

    @property
    def n_contexts(self) -> int:
        return self.targets.shape[0]

    @classmethod
    def none(cls, n_contexts: int, d: int, **tensor_kw) -> Interventions:
        """Observational contexts: no targets."""
        z = torch.zeros(n_contexts, d, **tensor_kw)
        return cls(targets=z, shift=z.clone())

    def drift_shift(self) -> torch.Tensor:
        """m ⊙ u [K, d], added to f(x) of every cell of the context."""
        return self.targets * self.shift

    def activity_factor(self) -> torch.Tensor | None:
        """α = exp(m ⊙ κ) [K, d], the scale of each variable's outgoing edges (None: all 1)."""
        return None if self.activity is None else torch.exp(self.targets * self.activity)

    def log_sigma(self, log_sigma: torch.Tensor) -> torch.Tensor:
        """Intervened log noise scales s + m ⊙ ℓ [K, d] from the model's s [d]."""
        base = log_sigma.expand(self.n_contexts, -1)
        if self.log_scale is None:
            return base
        return base + self.targets * self.log_scale

    def index(self, idx: torch.Tensor) -> Interventions:
        """The interventions of contexts ``idx`` (any integer index tensor)."""
        ls = None if self.log_scale is None else self.log_scale[idx]
        act = None if self.activity is None else self.activity[idx]
        return Interventions(self.targets[idx], self.shift[idx], ls, act)


def intervened_drift(drift, x: torch.Tensor, interventions: Interventions,
                     origin: torch.Tensor | None = None) -> torch.Tensor:
    """f_I(x) for x [K, n, d]: the model drift at each context's activities α (scaled around
    ``origin``, see ``drift.activity_inputs``) plus its shift m ⊙ u."""
    alpha = interventions.activity_factor()
    f = drift(x) if alpha is None else drift(x, activity=alpha[:, None, :], origin=origin)
    return f + interventions.drift_shift()[:, None, :]
