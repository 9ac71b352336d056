"""``free-causal``: the stadion-style causal model with free interventions (method.md §6).

The same causal model as GIM, but every training context k gets a free shift vector u_k on
all genes (all-ones masks) with an L1 penalty; target scores are |u_k| (max over a
perturbation's doses). Predictions take u from a ridge regression on [γ, c, c·γ]
(leave-one-perturbation-out CV; with one-hot features the smallest α, which returns each
seen context's own u). Fitted in control-standardised coordinates like GIM.
"""

from __future__ import annotations

import numpy as np
import torch

from ...core import sample_stationary
from .. import register
from ..base import PerturbationModel
from ..causal import fit_causal, graph_in_data_units, make_drift, standardise
from ..config import FitConfig
from ..ridge import ALPHA_GRID, RidgeFit, cv_alphas, design_matrix, fit_ridge_cv


@register
class FreeCausalBaseline(PerturbationModel):
    """Causal model + free per-context shifts (L1), ridge from features for new ones.

    Args:
        causal: ``"linear"`` or ``"mlp"``. steps: Adam steps. lambda_shift: L1 weight on u.
    """

    name = "free-causal"
    has_target_scores = True
    has_graph = True

    def __init__(self, *, seed: int = 0, causal: str = "linear", steps: int = 3000,
                 lambda_shift: float = 0.05):
        super().__init__(seed=seed, causal=causal, steps=steps, lambda_shift=lambda_shift)
        self.config = FitConfig(steps=steps, lambda_shift=lambda_shift)

    def _fit(self, contexts, *, adata, progress) -> None:
        self.mu0_, self.s0_, z = standardise(contexts, inplace=True)  # fit owns them
        targets = np.ones((z.n_contexts, z.n_genes), dtype=bool)
        targets[z.control] = False
        fit = fit_causal(z, targets, causal=self.options["causal"], config=self.config,
                         seed=self.seed, progress=progress)
        self.drift = fit.drift
        pert = [k for k in range(z.n_contexts) if k != z.control]
        U = fit.interventions.shift[pert].double().numpy()
        names = [z.perturbations[k] for k in pert]
        X = design_matrix(z.features[pert].double().numpy(), z.doses[pert].double().numpy())
        self.ridge_ = fit_ridge_cv(X, U, names, cv_alphas(ALPHA_GRID, self.feature_source_))
        self.max_dose_ = float(z.doses[pert].max())
        seen = sorted(set(names))
        self.seen_ = seen
        self.seen_scores_ = torch.stack([
            torch.as_tensor(np.abs(U[[i for i, n in enumerate(names) if n == p]]).max(0))
            for p in seen])

    def _shift(self, F: torch.Tensor, doses: torch.Tensor) -> torch.Tensor:
        X = design_matrix(F.double().numpy(), doses.double().numpy())
        return torch.as_tensor(self.ridge_(X))

    def _predict(self, F, doses, n_cells, mode, generator) -> torch.Tensor:
        shift = self._shift(F, doses).to(self.drift.b.dtype)
        ls = self.drift.log_sigma.detach().expand(len(F), -1)
        z = sample_stationary(self.drift, shift, ls, n_cells, generator=generator).float()
        return z * self.s0_ + self.mu0_

    def _target_scores(self, F, perturbations) -> torch.Tensor:
        new = self._shift(F, torch.full((len(F),), self.max_dose_)).abs()
        for i, p in enumerate(perturbations):
            if p in self.seen_:
                new[i] = self.seen_scores_[self.seen_.index(p)]
        return new

    def _graph(self) -> torch.Tensor:
        return graph_in_data_units(self.drift, self.s0_)

    def _state(self):
        r = self.ridge_
        tensors = {f"drift.{k}": v for k, v in self.drift.state_dict().items()}
        tensors |= {"mu0": self.mu0_, "s0": self.s0_, "seen_scores": self.seen_scores_}
        tensors |= r.to_tensors("ridge")
        return tensors, {"seen": self.seen_, "max_dose": self.max_dose_, "alpha": r.alpha}

    def _load_state(self, tensors, extra) -> None:
        self.drift = make_drift(self.options["causal"], len(self.genes_), self.config,
                                torch.Generator().manual_seed(0))
        self.drift.load_state_dict({k[6:]: v for k, v in tensors.items()
                                    if k.startswith("drift.")})
        self.drift.eval()
        self.mu0_, self.s0_ = tensors["mu0"], tensors["s0"]
        self.seen_, self.seen_scores_ = extra["seen"], tensors["seen_scores"]
        self.max_dose_ = extra["max_dose"]
        self.ridge_ = RidgeFit.from_tensors(tensors, "ridge", extra["alpha"])
