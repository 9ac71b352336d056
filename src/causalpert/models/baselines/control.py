"""``control`` baseline: predict the control cells unchanged ("no effect")."""

from __future__ import annotations

import anndata as ad
import torch

from ...data.contexts import Contexts
from .. import register
from ..base import PerturbationModel


def sample_control(cells: torch.Tensor, n_sets: int, n_cells: int,
                   generator: torch.Generator) -> torch.Tensor:
    """``n_sets`` independent draws of ``n_cells`` control cells, with replacement.

    Args:
        cells: control cells [n0, d].
        n_sets: number of sets P.
        n_cells: cells per set.
        generator: seeded generator (same seed → same cells).

    Returns:
        [P, n_cells, d] (float32).
    """
    idx = torch.randint(len(cells), (n_sets, n_cells), generator=generator)
    return cells[idx].float()


@register
class ControlBaseline(PerturbationModel):
    """Predicts control cells, ignoring the perturbation and the dose.

    X̂ = n_cells control cells drawn with replacement (seeded), for every (perturbation, dose).
    Its ``edist_rel`` is ≈ 1 by construction; it gives no target scores. ``mode`` is ignored.

    Args:
        seed: default sampling seed of ``predict``.
    """

    name = "control"
    accepts_any_perturbation = True

    def __init__(self, *, seed: int = 0):
        super().__init__(seed=seed)

    def _fit(self, contexts: Contexts, *, adata: ad.AnnData, progress: bool | None) -> None:
        pass  # nothing to learn: ``control_cells_`` is set (and saved) by the base class

    def _predict(self, F, doses, n_cells, mode, generator) -> torch.Tensor:
        return sample_control(self.control_cells_, len(F), n_cells, generator)
