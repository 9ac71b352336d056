"""``mean-shift`` baseline (benchmark method ``mean-ko``): control cells + the average shift of
the training perturbations, whatever is asked — the yardstick for a knockout never seen."""

from __future__ import annotations

import anndata as ad
import torch

from ...data.contexts import Contexts
from .. import register
from ..base import PerturbationModel
from .control import sample_control


@register
class MeanShiftBaseline(PerturbationModel):
    """Predicts X̂ = control cells + Δ̄ for every perturbation name, seen or not, where
    Δ̄ = mean_p (mean(X_p) − μ₀) averages the training perturbations' mean shifts (each
    perturbation once, its contexts pooled). It knows nothing of the perturbation: the answer
    of "a knockout does what knockouts do on average". ``mode`` and doses are ignored.

    Args:
        seed: default sampling seed of ``predict``.
    """

    name = "mean-shift"
    accepts_any_perturbation = True

    def __init__(self, *, seed: int = 0):
        super().__init__(seed=seed)

    def _fit(self, contexts: Contexts, *, adata: ad.AnnData, progress: bool | None) -> None:
        means = contexts.means().double()
        mu0 = means[contexts.control]
        shifts: dict[str, list[torch.Tensor]] = {}
        for k, p in enumerate(contexts.perturbations):
            if k != contexts.control:
                shifts.setdefault(p, []).append(means[k] - mu0)
        self._require_perturbed(len(shifts))
        self.shift_ = torch.stack([torch.stack(v).mean(0) for v in shifts.values()]).mean(0)

    def _predict(self, F, doses, n_cells, mode, generator) -> torch.Tensor:
        x0 = sample_control(self.control_cells_, len(F), n_cells, generator)
        return x0 + self.shift_.float()

    def _state(self):
        return {"shift": self.shift_}, {}

    def _load_state(self, tensors, extra) -> None:
        self.shift_ = tensors["shift"]
