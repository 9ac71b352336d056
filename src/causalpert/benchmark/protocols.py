"""Named, seeded benchmark protocols: what to fit on and what to score against."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd

from ..data.prepare import dense_matrix
from ..data.simulate import simulate

PROTOCOL_NAMES = ("paper-synthetic",)


@dataclass
class ProtocolData:
    """Everything a benchmark run needs for one (protocol, seed).

    Attributes:
        train: cells to fit on (control + training contexts).
        tests: split name → AnnData of held-out cells.
        x_control: training control cells [n0, d] (the "no effect" prediction).
        target_sets: split name → perturbations whose targets are scored there.
        truth_targets: perturbation × gene booleans, or None (no known targets).
        true_graph: [d, d] adjacency (i, j) = edge i → j, or None.
    """

    name: str
    seed: int
    train: ad.AnnData
    tests: dict[str, ad.AnnData]
    x_control: np.ndarray
    target_sets: dict[str, list[str]] = field(default_factory=dict)
    truth_targets: pd.DataFrame | None = None
    true_graph: np.ndarray | None = None
    fit_kwargs: dict = field(default_factory=dict)


def paper_synthetic(*, sim: str = "linear", seed: int = 0, design=None) -> ProtocolData:
    """Protocol ``paper-synthetic`` (docs/benchmarks.md): train on ``train``, score ``id``,
    ``partial_ood`` and ``full_ood``; targets of training perturbations are scored under
    ``id``, those of new perturbations (features only) under ``full_ood``."""
    adata = simulate("paper-synthetic", sim=sim, seed=seed, design=design)
    split = adata.obs["split"]
    train = adata[split == "train"].copy()
    ctrl = train[train.obs["perturbation"] == "control"]
    perts = adata.uns["perturbation_split"]
    return ProtocolData(
        name="paper-synthetic",
        seed=seed,
        train=train,
        tests={s: adata[split == s].copy() for s in ("id", "partial_ood", "full_ood")},
        x_control=dense_matrix(ctrl),
        target_sets={"id": list(perts["train"]), "full_ood": list(perts["full_ood"])},
        truth_targets=adata.uns["truth"]["targets"],
        true_graph=np.asarray(adata.uns["truth"]["adjacency"]).astype(bool),
        fit_kwargs={"perturbation_key": "perturbation", "dose_key": "dose",
                    "control": "control"},
    )


@functools.lru_cache(maxsize=4)
def load_protocol(name: str, *, sim: str = "linear", seed: int = 0, design=None
                  ) -> ProtocolData:
    """The data of protocol ``name`` for ``seed`` (``design``: smaller sizes, tests only).

    Cached per process (the few last), so methods of one seed share one simulation; models
    must not modify the returned AnnData objects.
    """
    if name == "paper-synthetic":
        return paper_synthetic(sim=sim, seed=seed, design=design)
    raise ValueError(f"unknown protocol {name!r}; choose one of {PROTOCOL_NAMES}")
