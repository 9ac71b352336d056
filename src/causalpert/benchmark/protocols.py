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
PROTOCOL_NAMES = (*SYNTHETIC_PROTOCOLS, "sachs", "sciplex3", "papalexi2021", "norman2019")


@dataclass
class Fold:
    """One extra fit of a protocol: fit on ``train``, predict ``tests`` (split → cells), e.g.
    a knockout left out of training and predicted from its intended gene alone. Only models
    that can predict a perturbation without features or seen cells run it (GIM with intended
    targets, ``control``, ``mean-shift``)."""

    label: str
    train: ad.AnnData
    tests: dict[str, ad.AnnData]


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
    fit_all_kwargs: dict | None = None
    folds: list[Fold] = field(default_factory=list)
    top_genes: dict[str, int] = field(default_factory=dict)


def paper_synthetic(*, sim: str = "linear", seed: int = 0, design=None,
                    name: str = "paper-synthetic") -> ProtocolData:
    """Protocol ``paper-synthetic`` (docs/benchmarks.md): train on ``train``, score ``id``,
    ``partial_ood``, ``full_ood`` and ``combo`` (pairs of training perturbations at dose 1,
    truth composed in the causal model); targets of training perturbations are scored under
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
        tests={s: adata[split == s].copy() for s in ("id", "partial_ood", "full_ood", "combo")
               if (split == s).any()},
        x_control=dense_matrix(ctrl),
        target_sets=target_sets,
        truth_targets=adata.uns["truth"]["targets"],
        true_graph=np.asarray(adata.uns["truth"]["adjacency"]).astype(bool),
        fit_kwargs={"perturbation_key": "perturbation", "dose_key": "dose",
                    "control": "control"},
    )


def _intended_truth(intended: dict[str, str], genes) -> pd.DataFrame:
    """Perturbation × gene booleans, True at each perturbation's one intended gene."""
    truth = pd.DataFrame(False, index=list(intended), columns=list(genes))
    for k, g in intended.items():
        truth.loc[k, g] = True
    return truth


def sachs(*, seed: int = 0, holdout: float = 0.2) -> ProtocolData:
    """Protocol ``sachs`` (docs/benchmarks.md): ``id`` = ``holdout`` of the cells of every
    perturbed condition (seeded; control cells all stay in training), predicted by a fit on
    the rest; ``targets`` = rank of the intended
    target of the 7 reagents that have one, and ``graph`` = AUPRC against the 17-edge consensus
    network, both from a fit on all cells (one-hot features: the model never sees the table)."""
    from ..data.datasets import sachs as load_sachs

    adata = load_sachs()
    control = adata.uns["control"]
    test = _holdout(adata, holdout, seed, keep=(control,))  # control: the reference
    train = adata[~test].copy()
    intended = {k: v for k, v in adata.uns["intended_targets"].items() if v}
    truth = _intended_truth(intended, adata.var_names)
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
                    "control": control, "intended_targets": {}},  # never given the answer
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


def _holdout(adata: ad.AnnData, fraction: float, seed: int, *, keep=("control",)) -> np.ndarray:
    """Boolean [N]: ``fraction`` of the cells of every perturbation not in ``keep``, seeded."""
    rng = np.random.default_rng(seed)
    test = np.zeros(adata.n_obs, dtype=bool)
    for name, rows in adata.obs.groupby("perturbation", observed=True).indices.items():
        if name not in keep:
            test[rng.choice(rows, size=round(fraction * len(rows)), replace=False)] = True
    return test


def papalexi2021(*, seed: int = 0, holdout: float = 0.2) -> ProtocolData:
    """Protocol ``papalexi2021`` (docs/benchmarks.md): CRISPR knockouts in THP-1 cells,
    modelled genes = ``papalexi_genes`` (detected in ≥ 10 % of control cells + the 9 measured
    knocked-out genes; it never sees a knockout's cells).

    - ``id``: ``holdout`` of each knockout's cells, predicted by a fit on the rest (with the
      intended-target prior of ``uns["intended_targets"]``);
    - ``targets``: a fit on all cells with opaque labels (``ko_00`` …) and no intended
      targets; rank of the knocked-out gene for the 9 measured ones;
    - ``unseen_ko``: one fold per measured target, fit without its cells, predicted from its
      intended gene alone; ``delta_pearson_top50`` on the 50 genes it moves most.
    """
    from ..data.screens import papalexi2021 as load
    from ..data.screens import papalexi_genes

    full = load()
    adata = full[:, papalexi_genes(full)].copy()
    del adata.layers["counts"]
    test = _holdout(adata, holdout, seed)
    kw = {"perturbation_key": "perturbation", "dose_key": None, "control": "control"}
    measured = list(adata.uns["measured_targets"])
    names = sorted(p for p in adata.obs["perturbation"].astype(str).unique() if p != "control")
    opaque = {p: f"ko_{i:02d}" for i, p in enumerate(names)}
    blind = adata.copy()
    blind.obs["perturbation"] = blind.obs["perturbation"].astype(str).map(
        lambda p: opaque.get(p, p)).astype("category")
    blind.uns.pop("intended_targets", None)
    intended = {opaque[g]: g for g in measured}
    truth = _intended_truth(intended, adata.var_names)
    pert = adata.obs["perturbation"].astype(str)
    folds = [Fold(g, adata[(pert != g).to_numpy()].copy(),
                  {"unseen_ko": adata[(pert == g).to_numpy()].copy()}) for g in measured]
    return ProtocolData(
        name="papalexi2021", seed=seed, train=adata[~test].copy(),
        tests={"id": adata[test].copy()},
        x_control=dense_matrix(adata[(pert == "control").to_numpy()]),
        target_sets={"targets": list(intended)}, truth_targets=truth,
        fit_kwargs=kw, fit_all=blind, fit_all_kwargs={**kw, "intended_targets": {}},
        intended_targets=intended, folds=folds, top_genes={"unseen_ko": 50},
    )


def condition_variable_genes(adata: ad.AnnData, n_genes: int) -> list[str]:
    """The ``n_genes`` genes whose condition means vary most across the perturbations of
    ``adata`` (control included), in var order: the genes the perturbations move."""
    x = dense_matrix(adata)
    labels = adata.obs["perturbation"].astype(str).to_numpy()
    means = np.stack([x[labels == p].mean(0) for p in np.unique(labels)])
    keep = np.sort(np.argsort(-means.var(0), kind="stable")[:n_genes])
    return list(adata.var_names[keep])


def norman2019(*, seed: int = 0, holdout: float = 0.2, n_genes: int = 200) -> ProtocolData:
    """Protocol ``norman2019`` (docs/benchmarks.md): CRISPR activation in K562.
    Training cells: control, the 18 singles and the 10 pairs without both singles, less
    ``holdout`` of each of their perturbations' cells (the ``id`` split); ``combo``: the 5
    pairs whose singles were seen (``uns["combo_test_pairs"]``), predicted by composing the
    singles; ``delta_pearson_top20`` on the 20 genes each pair moves most.

    Modelled genes: the ``n_genes`` of the 500 whose condition means vary most across the
    training conditions (``condition_variable_genes`` on the training cells only: neither
    the test pairs nor the ``id`` cells). With 100 cells
    per condition a linear drift over all 500 genes (250,000 weights) ran unstable in the
    refit (max Re eig 3.7 on seed 0)."""
    from ..data.screens import norman2019 as load

    adata = load()
    pairs = list(adata.uns["combo_test_pairs"])
    is_pair = adata.obs["perturbation"].astype(str).isin(pairs).to_numpy()
    rest = adata[~is_pair]
    test = _holdout(rest, holdout, seed)
    adata = adata[:, condition_variable_genes(rest[~test], n_genes)].copy()  # training cells
    rest = adata[~is_pair].copy()
    ctrl = (rest.obs["perturbation"].astype(str) == "control").to_numpy()
    return ProtocolData(
        name="norman2019", seed=seed, train=rest[~test].copy(),
        tests={"id": rest[test].copy(), "combo": adata[is_pair].copy()},
        x_control=dense_matrix(rest[ctrl]),
        fit_kwargs={"perturbation_key": "perturbation", "dose_key": None, "control": "control"},
        top_genes={"combo": 20},
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
    if name == "papalexi2021":
        return papalexi2021(seed=seed)
    if name == "norman2019":
        return norman2019(seed=seed)
    raise ValueError(f"unknown protocol {name!r}; choose one of {PROTOCOL_NAMES}")
