"""Atomic interventions I = (m, u, ℓ) applied to many contexts at once.

    f_I(x) = f(x) + m ⊙ u          σ_I = σ ⊙ exp(m ⊙ ℓ)

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
    """

    targets: torch.Tensor
    shift: torch.Tensor
    log_scale: torch.Tensor | None = None

    def __post_init__(self):
        if self.targets.dim() != 2 or self.targets.shape != self.shift.shape:
            raise ValueError(
                f"targets and shift must both be [K, d]; got {tuple(self.targets.shape)} and "
                f"{tuple(self.shift.shape)}"
            )
        if self.log_scale is not None and self.log_scale.shape != self.shift.shape:
            raise ValueError(
                f"log_scale must be [K, d] like shift; got {tuple(self.log_scale.shape)}"
            )

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

    def log_sigma(self, log_sigma: torch.Tensor) -> torch.Tensor:
        """Intervened log noise scales s + m ⊙ ℓ [K, d] from the model's s [d]."""
        base = log_sigma.expand(self.n_contexts, -1)
        if self.log_scale is None:
            return base
        return base + self.targets * self.log_scale

    def index(self, idx: torch.Tensor) -> Interventions:
        """The interventions of contexts ``idx`` (any integer index tensor)."""
        ls = None if self.log_scale is None else self.log_scale[idx]
        return Interventions(self.targets[idx], self.shift[idx], ls)


def intervened_drift(drift, x: torch.Tensor, interventions: Interventions) -> torch.Tensor:
    """f_I(x) for x [K, n, d]: the model drift plus each context's shift m ⊙ u."""
    return drift(x) + interventions.drift_shift()[:, None, :]
