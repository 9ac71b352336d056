"""Named, seeded benchmark protocols: what to fit on and what to score against."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd

from ..data.prepare import dense_matrix
from ..data.simulate import simulate

#: simulated protocols: their results are labelled ``<protocol>-<sim>``
SYNTHETIC_PROTOCOLS = ("paper-synthetic", "activity-synthetic")
PROTOCOL_NAMES = (*SYNTHETIC_PROTOCOLS, "sachs", "sciplex3")


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
        fit_all: if set, targets and graph are scored on a second fit on these cells (e.g.
            all cells of Sachs), not on the fit to ``train``.
        intended_targets: perturbation → its one intended target gene, scored by rank
            (``target_rank``, ``target_top2``) in the split of ``target_sets``.
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
    fit_all: ad.AnnData | None = None
    intended_targets: dict[str, str] | None = None


def paper_synthetic(*, sim: str = "linear", seed: int = 0, design=None,
                    name: str = "paper-synthetic") -> ProtocolData:
    """Protocol ``paper-synthetic`` (docs/benchmarks.md): train on ``train``, score ``id``,
    ``partial_ood`` and ``full_ood``; targets of training perturbations are scored under
    ``id``, those of new perturbations (features only) under ``full_ood``. The same for
    ``activity-synthetic`` (half the perturbations inhibit activity, ``simulate``)."""
    adata = simulate(name, sim=sim, seed=seed, design=design)
    split = adata.obs["split"]
    train = adata[split == "train"].copy()
    ctrl = train[train.obs["perturbation"] == "control"]
    perts = adata.uns["perturbation_split"]
    target_sets = {"id": list(perts["train"]), "full_ood": list(perts["full_ood"])}
    if "activity" in adata.uns["truth"]:  # activity-synthetic: also scored by kind
        inhibits = adata.uns["truth"]["activity"].abs().sum(1) > 0
        target_sets["id_activity"] = [p for p in perts["train"] if inhibits[p]]
        target_sets["id_shift"] = [p for p in perts["train"] if not inhibits[p]]
    return ProtocolData(
        name=name,
        seed=seed,
        train=train,
        tests={s: adata[split == s].copy() for s in ("id", "partial_ood", "full_ood")},
        x_control=dense_matrix(ctrl),
        target_sets=target_sets,
        truth_targets=adata.uns["truth"]["targets"],
        true_graph=np.asarray(adata.uns["truth"]["adjacency"]).astype(bool),
        fit_kwargs={"perturbation_key": "perturbation", "dose_key": "dose",
                    "control": "control"},
    )


def sachs(*, seed: int = 0, holdout: float = 0.2) -> ProtocolData:
    """Protocol ``sachs`` (docs/benchmarks.md): ``id`` = ``holdout`` of the cells of every
    perturbed condition (seeded; control cells all stay in training), predicted by a fit on
    the rest; ``targets`` = rank of the intended
    target of the 7 reagents that have one, and ``graph`` = AUPRC against the 17-edge consensus
    network, both from a fit on all cells (one-hot features: the model never sees the table)."""
    from ..data.datasets import sachs as load_sachs

    adata = load_sachs()
    control = adata.uns["control"]
    rng = np.random.default_rng(seed)
    test = np.zeros(adata.n_obs, dtype=bool)
    for name, rows in adata.obs.groupby("perturbation", observed=True).indices.items():
        if name != control:  # the control context is the reference, not a prediction task
            test[rng.choice(rows, size=round(holdout * len(rows)), replace=False)] = True
    train = adata[~test].copy()
    intended = {k: v for k, v in adata.uns["intended_targets"].items() if v}
    truth = pd.DataFrame(False, index=list(intended), columns=list(adata.var_names))
    for k, v in intended.items():
        truth.loc[k, v] = True
    return ProtocolData(
        name="sachs",
        seed=seed,
        train=train,
        tests={"id": adata[test].copy()},
        x_control=dense_matrix(train[train.obs["perturbation"] == control]),
        target_sets={"targets": list(intended)},
        truth_targets=truth,
        true_graph=np.asarray(adata.uns["consensus_graph"]).astype(bool),
        fit_kwargs={"perturbation_key": "perturbation", "dose_key": "dose",
                    "control": control},
        fit_all=adata,
        intended_targets=intended,
    )


def sciplex3(*, path: str, cell_line: str = "A549", seed: int = 0, n_genes: int = 50
             ) -> ProtocolData:
    """Protocol ``sciplex3`` on the user's file (``data.sciplex3.read_sciplex3``): train on
    ``train``, score ``id`` (10 % of the cells of every training context), ``partial_ood`` (a
    held-out dose) and ``full_ood`` (20 % of drugs, Morgan features only). No known targets or
    graph."""
    from ..data.sciplex3 import read_sciplex3

    adata = read_sciplex3(path, cell_line=cell_line, n_genes=n_genes, seed=seed)
    split = adata.obs["split"]
    train = adata[split == "train"].copy()
    return ProtocolData(
        name="sciplex3",
        seed=seed,
        train=train,
        tests={s: adata[split == s].copy() for s in ("id", "partial_ood", "full_ood")
               if (split == s).any()},
        x_control=dense_matrix(train[train.obs["perturbation"] == "control"]),
        fit_kwargs={"perturbation_key": "perturbation", "dose_key": "dose",
                    "control": "control"},
    )


@functools.lru_cache(maxsize=4)
def load_protocol(name: str, *, sim: str = "linear", seed: int = 0, design=None,
                  data: str | None = None, cell_line: str = "A549") -> ProtocolData:
    """The data of protocol ``name`` for ``seed`` (``design``: smaller sizes, tests only;
    ``data``: the user's file, for ``sciplex3``).

    Cached per process (the few last), so methods of one seed share one data set; models
    must not modify the returned AnnData objects.
    """
    if name in SYNTHETIC_PROTOCOLS:
        return paper_synthetic(sim=sim, seed=seed, design=design, name=name)
    if name == "sachs":
        return sachs(seed=seed)
    if name == "sciplex3":
        if data is None:
            raise ValueError("protocol sciplex3 needs the h5ad file: pass --data PATH.h5ad")
        return sciplex3(path=data, cell_line=cell_line, seed=seed)
    raise ValueError(f"unknown protocol {name!r}; choose one of {PROTOCOL_NAMES}")
