"""``de`` baseline: differential-expression target ranking, |Δmean| / pooled sd (no cells)."""

from __future__ import annotations

import anndata as ad
import torch

from ...data.contexts import Contexts
from .. import register
from ..base import PerturbationModel


def standardized_shift(x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """|mean(x) − mean(x₀)| / pooled sd per gene [d].

    pooled sd² = ((n − 1)·var(x) + (n₀ − 1)·var(x₀)) / (n + n₀ − 2), floored at 1e-12.

    Args:
        x: cells of one context [n, d]. x0: control cells [n₀, d].
    """
    x, x0 = x.double(), x0.double()
    n, n0 = len(x), len(x0)
    pooled = ((n - 1) * x.var(0) + (n0 - 1) * x0.var(0)) / (n + n0 - 2)
    return ((x.mean(0) - x0.mean(0)).abs() / pooled.clamp_min(1e-12).sqrt()).float()


@register
class DEBaseline(PerturbationModel):
    """Target ranking by differential expression; it ranks targets only and predicts no cells.

    score[p, j] = max over the training doses c of perturbation p of
    |mean(X_{p,c})_j − μ₀_j| / pooled_sd_j(X_{p,c}, X₀)  (see ``standardized_shift``).
    A score, not a probability. Only perturbations seen in ``fit`` can be scored; the features
    are not used.

    Args:
        seed: unused (kept for the common interface).
    """

    name = "de"
    has_target_scores = True

    def __init__(self, *, seed: int = 0):
        super().__init__(seed=seed)

    def _fit(self, contexts: Contexts, *, adata: ad.AnnData, progress: bool | None) -> None:
        x0 = contexts.cells(contexts.control)
        best: dict[str, torch.Tensor] = {}
        for k, name in enumerate(contexts.perturbations):
            if k == contexts.control:
                continue
            score = standardized_shift(contexts.cells(k), x0)
            best[name] = score if name not in best else torch.maximum(best[name], score)
        self._require_perturbed(len(best))
        self.perturbations_ = list(best)
        self.scores_ = torch.stack([best[p] for p in self.perturbations_])

    def predict(self, *args, **kwargs):
        """Not available: raises ``NotImplementedError``."""
        raise NotImplementedError("the de baseline ranks targets only; it does not predict cells")

    def _features_for(self, perturbations, features, free=()) -> torch.Tensor:
        return torch.zeros(len(perturbations), 0)  # features are not used; names are checked

    def _default_perturbations(self, perturbations):
        return list(self.perturbations_) if perturbations is None else list(perturbations)

    def _target_scores(self, F, perturbations) -> torch.Tensor:
        row = {p: i for i, p in enumerate(self.perturbations_)}
        unseen = [str(p) for p in perturbations if str(p) not in row]
        if unseen:
            raise ValueError(f"the de baseline scores only perturbations seen in fit: "
                             f"{unseen[0]!r}" + (f" (and {len(unseen) - 1} more)"
                                                 if len(unseen) > 1 else ""))
        return self.scores_[[row[str(p)] for p in perturbations]]

    def _state(self):
        return {"scores": self.scores_}, {"perturbations": self.perturbations_}

    def _load_state(self, tensors, extra) -> None:
        self.scores_ = tensors["scores"]
        self.perturbations_ = list(extra["perturbations"])
        if len(self.perturbations_) != len(self.scores_):
            raise ValueError("de checkpoint: scores and perturbation names disagree")
