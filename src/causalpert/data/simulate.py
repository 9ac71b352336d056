"""Seeded synthetic protocols returning AnnData with the ground truth in ``uns``.

``paper-synthetic`` mirrors the GIM paper's split sizes (docs/benchmarks.md): 40 training
perturbations × doses {0.5, 1, 1.5, 2} of 50 cells + 800 control cells; ``id`` = 50 fresh cells
per training context; ``partial_ood`` = the same perturbations at doses {0.25, …, 2.25};
``full_ood`` = 20 new perturbations at the training doses; 200 cells per test context.
Each perturbation hits 1–3 genes with maximal shift a_j = ±U[2, 5] and a Hill dose response
(EC50 U[0.5, 1.5], coefficient U[1, 3]); features γ = tanh(0.25 · R z) + N(0, 0.05²) with
z = [a, K, n] and R_ij ~ N(0, 1/(d+2)).

``activity-synthetic`` is ``paper-synthetic`` where a fraction of the perturbations
(``SyntheticDesign.activity_fraction``, default 0.5) inhibit the *activity* of 1–3 genes that
have children instead of shifting their level: every outgoing edge of a target is scaled by
α = exp(κ · H(c)), κ = −0.6 |a| ∈ [−3, −1.2] (α = 0.05–0.3 at saturation), the target's own
level moves only through feedback. Activity is scaled around 0, the inactive level, so the
truth's biases are reset to put every control mean 3 stationary sds above 0 (b = −W m,
m = 3 sd), as in positive-valued expression or phospho data (Sachs: 4–9 sds); otherwise an
inhibitor of a gene whose mean is near 0 would change variances only. Linear truth only.
Features encode [a, κ, K, n].

Both also have a ``combo`` split (docs/benchmarks.md "Split combo in paper-synthetic"):
``SyntheticDesign.n_combo_pairs`` (default 40; at most all pairs) distinct pairs of training
perturbations, both at ``combo_dose`` (1), ``n_test_cells`` (200) cells each, named
``"pert_03+pert_17"`` (lower index first). The truth is composed in the causal model (method.md
§7): targets are the union, shifts add, u = a_A ⊙ H_A(c) + a_B ⊙ H_B(c) (each with its own EC50
and coefficient), activity log factors add (the α multiply); cells are sampled from the
intervened true model. The pairs come from their own generator (``default_rng([seed, 11])``)
and the cells from their own sampler call (torch seed ``seed + 7919``), appended after every
other cell, so the other splits are exactly those of a design with ``n_combo_pairs=0``.

``single-target`` is the reference task of the stationary-diffusion literature: 800
observational cells plus one shift intervention (±U[2, 5]) on every variable, 200 cells each.

``knockout-screen`` is a pooled knockdown screen over more genes than one round of
experiments can cover (``SyntheticDesign.n_knockout_genes``, default 40; the design
benchmark's coverage-scarce pool): 800 control cells plus a knockdown of every gene, a drift
shift −U[2, 4] on that gene alone, ``n_knockout_cells`` (200) cells each. A knockout is named
by its gene (``"g07"``) and ``uns["intended_targets"]`` maps it to itself, so a model with
intended targets predicts a gene never knocked out from its name. ``obs["dose"]`` is 1.0 (a
placeholder, as in the bundled screens); every cell is ``train``.
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import torch

from ..core import hill, sample_stationary, stationary_gaussian
from .ground_truth import drift_parameters, random_drift

CONTROL = "control"


@dataclass(frozen=True)
class SyntheticDesign:
    """Sizes of a ``paper-synthetic`` data set (defaults = the protocol; smaller only in tests)."""

    d: int = 20
    n_features: int = 32
    n_train_perturbations: int = 40
    n_ood_perturbations: int = 20
    train_doses: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
    partial_ood_doses: tuple[float, ...] = (0.25, 0.75, 1.25, 1.75, 2.25)
    n_control: int = 800
    n_train_cells: int = 50
    n_id_cells: int = 50
    n_test_cells: int = 200
    parents: float = 2.0
    n_knockout_genes: int = 40  # knockout-screen only: genes (each knocked down once)
    n_knockout_cells: int = 200  # knockout-screen only: cells per knockdown
    activity_fraction: float = 0.5  # used by activity-synthetic only
    n_combo_pairs: int = 40  # pairs of training perturbations in the combo split (0: none)
    combo_dose: float = 1.0  # dose of both perturbations of a pair


PROTOCOLS = ("paper-synthetic", "activity-synthetic", "single-target", "knockout-screen")


def _perturbations(n: int, d: int, rng: np.random.Generator) -> pd.DataFrame:
    """Targets, maximal shifts a, EC50 K and Hill coefficient n of n random perturbations."""
    amp = np.zeros((n, d))
    for p in range(n):
        t = rng.choice(d, size=rng.integers(1, 4), replace=False)
        amp[p, t] = rng.choice([-1.0, 1.0], size=len(t)) * rng.uniform(2, 5, size=len(t))
    return amp, rng.uniform(0.5, 1.5, n), rng.uniform(1, 3, n)


def _raise_levels(drift, sds: float) -> None:
    """Set b = −W m so that the control stationary mean is m = ``sds`` stationary sds."""
    _, cov = stationary_gaussian(drift.W, drift.b, torch.zeros(1, drift.d, dtype=torch.float64),
                                 drift.log_sigma.exp()[None])
    m = sds * cov[0].diagonal().sqrt()
    with torch.no_grad():
        drift.b.copy_(-(drift.W @ m))


def _activity_perturbations(amp: np.ndarray, adj: np.ndarray, fraction: float,
                            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Turn a ``fraction`` of the perturbations into activity inhibitors: same number of
    targets, redrawn among genes with children, κ = −0.6 |a|; returns (a, κ) [P, d]."""
    amp, kappa = amp.copy(), np.zeros_like(amp)
    parents = np.flatnonzero(adj.any(1))
    for p in np.flatnonzero(rng.random(len(amp)) < fraction):
        size = rng.uniform(2, 5, size=int((amp[p] != 0).sum()))
        t = rng.choice(parents, size=min(len(size), len(parents)), replace=False)
        amp[p] = 0.0
        kappa[p, t] = -0.6 * size[:len(t)]
    return amp, kappa


def _sample_groups(drift, shifts: np.ndarray, sizes: np.ndarray, seed: int,
                   activity: np.ndarray | None = None) -> list[np.ndarray]:
    """Sample every context; contexts of equal size go through the sampler together."""
    g = torch.Generator().manual_seed(seed)
    out: list[np.ndarray | None] = [None] * len(sizes)
    log_sigma = drift.log_sigma.detach()
    for n in np.unique(sizes):
        idx = np.flatnonzero(sizes == n)
        sh = torch.from_numpy(shifts[idx])
        act = None if activity is None else torch.from_numpy(activity[idx])
        cells = sample_stationary(drift, sh, log_sigma.expand(len(idx), -1), int(n),
                                  chains=max(10, int(n) // 10), activity=act, generator=g)
        for i, k in enumerate(idx):
            out[k] = cells[i].numpy()
    return out


COMBO_SEED_OFFSET = 7919  # torch seed of the combo cells = seed + this (own sampler call)


def _combo_pairs(n_train: int, n_pairs: int, seed: int) -> list[tuple[int, int]]:
    """``n_pairs`` distinct pairs (i < j) of the first ``n_train`` perturbations, drawn by a
    generator of their own (so nothing else in the recipe moves), in lexicographic order."""
    if n_pairs < 0:
        raise ValueError(f"SyntheticDesign.n_combo_pairs must be ≥ 0, got {n_pairs}")
    first, second = np.triu_indices(n_train, 1)
    k = min(n_pairs, len(first))
    if k == 0:
        return []
    pick = np.sort(np.random.default_rng([seed, 11]).choice(len(first), size=k, replace=False))
    return [(int(first[i]), int(second[i])) for i in pick]


def _combo_contexts(pairs, names, amp, kappa, ec50, coeff, dose: float, n_cells: int):
    """Contexts, shifts and activity factors of the combo split: targets are the union,
    shifts add, u = a_A ⊙ H_A(c) + a_B ⊙ H_B(c); activity log factors add (α multiply)."""
    pa, pb = (np.array(i) for i in zip(*pairs, strict=True))
    c = torch.tensor(float(dose), dtype=torch.float64)
    H = hill(c, torch.from_numpy(ec50), torch.from_numpy(coeff)).numpy()[:, None]  # [P, 1]
    shifts = amp[pa] * H[pa] + amp[pb] * H[pb]
    activity = None if kappa is None else np.exp(kappa[pa] * H[pa] + kappa[pb] * H[pb])
    pair_names = [f"{names[i]}+{names[j]}" for i, j in pairs]
    contexts = pd.DataFrame({"perturbation": pair_names, "dose": float(dose), "split": "combo",
                             "n": n_cells})
    table = pd.DataFrame({"first": [names[i] for i in pa], "second": [names[j] for j in pb]},
                         index=pair_names)
    return contexts, shifts, activity, table


def _assemble(drift, adj, contexts: pd.DataFrame, shifts, seed, uns,
              activity: np.ndarray | None = None, combo=None) -> ad.AnnData:
    """Sample and stack the cells; ``combo`` = (contexts, shifts, activity) sampled by a
    separate call (torch seed ``seed + COMBO_SEED_OFFSET``) and appended after the others."""
    cells = _sample_groups(drift, shifts, contexts["n"].to_numpy(), seed, activity)
    if combo is not None:
        c_contexts, c_shifts, c_activity = combo
        cells += _sample_groups(drift, c_shifts, c_contexts["n"].to_numpy(),
                                seed + COMBO_SEED_OFFSET, c_activity)
        contexts = pd.concat([contexts, c_contexts], ignore_index=True)
    x = np.concatenate(cells).astype(np.float32)
    reps = contexts["n"].to_numpy()
    obs = pd.DataFrame({
        "perturbation": np.repeat(contexts["perturbation"].to_numpy(), reps),
        "dose": np.repeat(contexts["dose"].to_numpy(), reps).astype(np.float64),
        "split": np.repeat(contexts["split"].to_numpy(), reps),
    })
    obs.index = [f"cell_{i}" for i in range(len(obs))]
    for col in ("perturbation", "split"):
        obs[col] = obs[col].astype("category")
    d = x.shape[1]
    var = pd.DataFrame(index=[f"g{j:02d}" for j in range(d)])
    adata = ad.AnnData(X=x, obs=obs, var=var)
    graph = drift.graph().numpy() * adj
    uns["truth"]["graph"] = graph
    uns["truth"]["adjacency"] = adj.astype(np.int8)
    uns["truth"]["params"] = drift_parameters(drift)
    adata.uns.update(uns)
    return adata


def simulate(
    protocol: str = "paper-synthetic",
    *,
    sim: str = "linear",
    seed: int = 0,
    design: SyntheticDesign | None = None,
) -> ad.AnnData:
    """Simulate a seeded synthetic data set (same protocol + sim + seed → identical data).

    Args:
        protocol: ``"paper-synthetic"``, ``"activity-synthetic"``, ``"single-target"`` or
            ``"knockout-screen"``.
        sim: ground truth, ``"linear"`` (exact Gaussian sampling) or ``"mlp"`` (Euler–Maruyama).
        seed: seed of the whole recipe (graph, parameters, perturbations, features, cells).
        design: sizes (defaults to the protocol's; change them only for tests).

    Returns:
        AnnData cells × genes; ``obs``: ``perturbation`` (control cells: ``"control"``),
        ``dose`` (0 for control), ``split`` (``train``, ``id``, ``partial_ood``, ``full_ood``,
        ``combo``; control cells are ``train``); ``uns``: ``perturbation_features`` (DataFrame
        indexed by perturbation), ``perturbation_split`` (``train``, ``full_ood``, ``combo``:
        lists of names), ``truth`` (graph, adjacency, targets, effects, hill, params; for
        activity-synthetic also ``activity``, the log factors κ; ``combos``: DataFrame indexed
        by pair name with columns ``first``, ``second``), ``protocol``.

        The ``combo`` split (paper-synthetic and activity-synthetic, not single-target):
        ``design.n_combo_pairs`` pairs of training perturbations, both at
        ``design.combo_dose``, ``design.n_test_cells`` cells each, obs ``perturbation``
        ``"pert_03+pert_17"`` (lower index first), sampled from the true model under both
        interventions at once (union of targets, shifts add, activity factors multiply).
        Its cells come last; every other cell is the same as with ``n_combo_pairs=0``.
        Pair names are not rows of ``truth["targets"]``/``["effects"]`` nor of
        ``perturbation_features``: compose them from ``truth["combos"]``.

    Examples:
        >>> import causalpert as cp
        >>> adata = cp.simulate("paper-synthetic", sim="linear", seed=0)
        >>> adata.obs["split"].value_counts()["train"]
        8800
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
    if sim not in ("linear", "mlp"):
        raise ValueError(f"unknown ground truth {sim!r}; use sim='linear' or sim='mlp'")
    design = design or SyntheticDesign()
    rng = np.random.default_rng(seed)
    d = design.n_knockout_genes if protocol == "knockout-screen" else design.d
    if protocol == "activity-synthetic" and sim != "linear":
        raise ValueError("activity-synthetic has a linear ground truth only; use sim='linear'")
    drift, adj = random_drift(d, sim, rng, parents=design.parents)
    if protocol == "activity-synthetic":
        _raise_levels(drift, sds=3.0)
    genes = [f"g{j:02d}" for j in range(d)]
    uns = {"protocol": {"name": protocol, "sim": sim, "seed": seed}, "control": CONTROL}
    if protocol in ("single-target", "knockout-screen"):  # one intervention per gene
        knockout = protocol == "knockout-screen"
        size = (-rng.uniform(2, 4, d) if knockout
                else rng.choice([-1.0, 1.0], d) * rng.uniform(2, 5, d))
        names = genes if knockout else [f"do_{g}" for g in genes]
        n = design.n_knockout_cells if knockout else 200
        contexts = pd.DataFrame({"perturbation": [CONTROL, *names], "dose": [0.0] + [1.0] * d,
                                 "split": "train", "n": [design.n_control] + [n] * d})
        effects = np.diag(size)
        if knockout:
            uns["intended_targets"] = {g: g for g in genes}
        uns["truth"] = {"targets": pd.DataFrame(np.eye(d, dtype=bool), index=names,
                                                columns=genes),
                        "effects": pd.DataFrame(effects, index=names, columns=genes)}
        return _assemble(drift, adj, contexts, np.vstack([np.zeros(d), effects]), seed, uns)

    n_tr, n_ood = design.n_train_perturbations, design.n_ood_perturbations
    amp, ec50, coeff = _perturbations(n_tr + n_ood, d, rng)
    names = [f"pert_{p:02d}" for p in range(n_tr + n_ood)]
    kappa = None
    if protocol == "activity-synthetic":
        amp, kappa = _activity_perturbations(amp, adj, design.activity_fraction, rng)
        z = np.hstack([amp, kappa, ec50[:, None], coeff[:, None]])
    else:
        z = np.hstack([amp, ec50[:, None], coeff[:, None]])
    R = rng.normal(0, np.sqrt(1 / z.shape[1]), size=(design.n_features, z.shape[1]))
    gamma = np.tanh(0.25 * z @ R.T) + rng.normal(0, 0.05, size=(len(names), design.n_features))

    rows = [(CONTROL, 0.0, "train", design.n_control, -1)]
    for p in range(n_tr):
        rows += [(names[p], c, "train", design.n_train_cells, p) for c in design.train_doses]
    for p in range(n_tr):
        rows += [(names[p], c, "id", design.n_id_cells, p) for c in design.train_doses]
    for p in range(n_tr):
        rows += [(names[p], c, "partial_ood", design.n_test_cells, p)
                 for c in design.partial_ood_doses]
    for p in range(n_tr, n_tr + n_ood):
        rows += [(names[p], c, "full_ood", design.n_test_cells, p) for c in design.train_doses]
    contexts = pd.DataFrame(rows, columns=["perturbation", "dose", "split", "n", "p"])
    pidx = contexts["p"].to_numpy()
    dose = torch.from_numpy(contexts["dose"].to_numpy())
    H = hill(dose[:, None], torch.from_numpy(ec50[pidx])[:, None],
             torch.from_numpy(coeff[pidx])[:, None]).numpy()
    shifts = np.where(pidx[:, None] >= 0, amp[pidx] * H, 0.0)
    activity = None if kappa is None else np.exp(np.where(pidx[:, None] >= 0,
                                                          kappa[pidx] * H, 0.0))

    feats = pd.DataFrame(gamma, index=names, columns=[f"f{i:02d}" for i in range(gamma.shape[1])])
    uns["perturbation_features"] = feats
    uns["truth"] = {
        "targets": pd.DataFrame((amp != 0) | (kappa != 0 if kappa is not None else False),
                                index=names, columns=genes),
        "effects": pd.DataFrame(amp, index=names, columns=genes),
        "hill": pd.DataFrame({"ec50": ec50, "hill_coefficient": coeff}, index=names),
        "sim": sim,
    }
    if kappa is not None:
        uns["truth"]["activity"] = pd.DataFrame(kappa, index=names, columns=genes)
    uns["perturbation_split"] = {"train": names[:n_tr], "full_ood": names[n_tr:]}
    # combo split last, from its own generator and sampler call: the splits above stay as is
    pairs = _combo_pairs(n_tr, design.n_combo_pairs, seed)
    combo = None
    if pairs:
        c_contexts, c_shifts, c_activity, table = _combo_contexts(
            pairs, names, amp, kappa, ec50, coeff, design.combo_dose, design.n_test_cells)
        uns["perturbation_split"]["combo"] = list(table.index)
        uns["truth"]["combos"] = table
        combo = (c_contexts, c_shifts, c_activity)
    return _assemble(drift, adj, contexts, shifts, seed, uns, activity, combo)
