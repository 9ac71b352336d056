"""``oracle``: the true simulated model with the true interventions — the ceiling.

Reads ``adata.uns["truth"]`` written by ``causalpert.simulate`` (paper-synthetic): the true
drift, and per perturbation the targets, maximal shifts a and Hill parameters (K, n), so
u(c) = a · cⁿ / (Kⁿ + cⁿ), and for activity-synthetic the activity log factors κ, so
α(c) = exp(κ · cⁿ / (Kⁿ + cⁿ)). Synthetic data only.
"""

from __future__ import annotations

import numpy as np
import torch

from ...core import LinearDrift, MLPDrift, hill, sample_stationary
from ...data.ground_truth import MLP_TRUTH_HIDDEN
from .. import register
from ..base import PerturbationModel


@register
class OracleBaseline(PerturbationModel):
    """The data-generating model (needs ``uns["truth"]``; predicts by perturbation name)."""

    name = "oracle"
    has_target_scores = True
    has_graph = True
    predict_uses_names = True
    composes = True  # combinations: true shifts add, activity factors multiply (method.md §7)

    def _fit(self, contexts, *, adata, progress) -> None:
        truth = adata.uns.get("truth")
        if truth is None or "hill" not in truth:
            raise ValueError("the oracle needs the simulated truth in adata.uns['truth'] "
                             "(data from causalpert.simulate('paper-synthetic'))")
        genes = list(contexts.genes)
        self.names_ = list(truth["effects"].index)
        self.amp_ = torch.as_tensor(truth["effects"].loc[:, genes].to_numpy(np.float64))
        act = truth.get("activity")
        self.kappa_ = (torch.zeros_like(self.amp_) if act is None
                       else torch.as_tensor(act.loc[:, genes].to_numpy(np.float64)))
        self.ec50_ = torch.as_tensor(truth["hill"]["ec50"].to_numpy(np.float64))
        self.coeff_ = torch.as_tensor(truth["hill"]["hill_coefficient"].to_numpy(np.float64))
        self.params_ = {k: torch.as_tensor(np.asarray(v, dtype=np.float64))
                        for k, v in truth["params"].items()}
        self.graph_ = torch.as_tensor(np.asarray(truth["graph"], dtype=np.float64))
        self._make_drift()

    def _make_drift(self) -> None:
        d = self.amp_.shape[1]
        drift = (MLPDrift(d, hidden=MLP_TRUTH_HIDDEN) if "A" in self.params_
                 else LinearDrift(d)).double()
        with torch.no_grad():
            for k, v in self.params_.items():
                getattr(drift, k).copy_(v)
        self.drift = drift.requires_grad_(False)

    def _rows(self, perturbations) -> list[int]:
        missing = [p for p in perturbations if p not in self.names_]
        if missing:
            raise ValueError(f"the oracle knows only simulated perturbations; unknown: "
                             f"{missing[:3]}")
        return [self.names_.index(p) for p in perturbations]

    def _predict(self, F, doses, n_cells, mode, generator, *, perturbations) -> torch.Tensor:
        return self._predict_composed(F, doses, [[i] for i in range(len(F))], n_cells, mode,
                                      generator, perturbations=perturbations)

    def _predict_composed(self, F, doses, groups, n_cells, mode, generator, *,
                          perturbations) -> torch.Tensor:
        idx = self._rows(perturbations)
        H = hill(doses.double()[:, None], self.ec50_[idx, None], self.coeff_[idx, None])
        shift = torch.stack([(self.amp_[idx] * H)[g].sum(0) for g in groups])
        ls = self.drift.log_sigma.expand(len(groups), -1)
        activity = (torch.exp(torch.stack([(self.kappa_[idx] * H)[g].sum(0) for g in groups]))
                    if self.kappa_.any() else None)
        return sample_stationary(self.drift, shift, ls, n_cells, activity=activity,
                                 generator=generator).float()

    def _target_scores(self, F, perturbations) -> torch.Tensor:
        idx = self._rows(perturbations)
        return ((self.amp_[idx] != 0) | (self.kappa_[idx] != 0)).double()

    def _graph(self) -> torch.Tensor:
        return self.graph_

    def _state(self):
        tensors = {"amp": self.amp_, "kappa": self.kappa_, "ec50": self.ec50_,
                   "coeff": self.coeff_, "graph": self.graph_}
        tensors |= {f"param.{k}": v for k, v in self.params_.items()}
        return tensors, {"names": self.names_}

    def _load_state(self, tensors, extra) -> None:
        self.names_ = extra["names"]
        self.amp_, self.ec50_, self.coeff_ = tensors["amp"], tensors["ec50"], tensors["coeff"]
        self.kappa_ = tensors.get("kappa", torch.zeros_like(self.amp_))
        self.graph_ = tensors["graph"]
        self.params_ = {k[6:]: v for k, v in tensors.items() if k.startswith("param.")}
        self._make_drift()
