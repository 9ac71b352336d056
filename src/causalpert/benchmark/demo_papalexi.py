"""The Papalexi 2021 part of ``causalpert demo``: GIM on the bundled CRISPR knockouts in THP-1.

``papalexi_gim(seed=0)`` fits GIM twice on protocol ``papalexi2021`` (docs/benchmarks.md):

- blind, on all cells with opaque knockout labels (``ko_00`` …) and no intended targets: the
  rank of each measured knocked-out gene among the modelled genes, and the learned network
  around the IFN-γ pathway genes;
- on the 80 % training cells without the JAK2 knockout (intended-target prior on): predicted vs
  observed mean shift per gene for held-out STAT1 and IFNGR2 cells, and for JAK2 predicted from
  its gene name alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .evaluate import evaluate_target_ranks
from .html_report import Section
from .protocols import load_protocol

#: knockouts seen in training whose held-out cells are compared with GIM's prediction
SHOWN_HELD_OUT = ("STAT1", "IFNGR2")
#: the knockout left out of the second fit and predicted from its gene name alone
UNSEEN = "JAK2"
#: pathway genes whose strongest neighbours in the learned graph join the network figure
HUBS = ("JAK2", "STAT1", "IFNGR2")
#: neighbours of ``HUBS`` added to the measured knocked-out genes in the network figure
N_NEIGHBOURS = 7


@dataclass
class PapalexiGIM:
    """What the demo shows of GIM on Papalexi 2021.

    Attributes:
        sections: report sections (shift scatter plots, the rank table, the network).
        ranks: per measured knockout (index: the opaque label the blind fit saw): the
            knocked-out gene, its rank among the modelled genes (1 = best) and GIM's top-3.
        seconds: wall time of each fit ("all": blind fit on all cells, "train": 80 % without
            the JAK2 knockout).
        pearson: Pearson r of predicted vs observed mean shift per gene, per shown knockout.
    """

    sections: list[Section]
    ranks: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    pearson: dict[str, float] = field(default_factory=dict)


def _fit(cells, kwargs: dict, *, seed: int, options: dict, progress):
    from ..models import GIM

    t0 = time.perf_counter()
    model = GIM(seed=seed, **options).fit(cells, progress=progress, **kwargs)
    return model, time.perf_counter() - t0


def _mean(adata) -> np.ndarray:
    from ..data.prepare import dense_matrix

    return dense_matrix(adata).mean(0)


def papalexi_gim(*, seed: int = 0, options: dict | None = None,
                 progress: bool | None = None) -> PapalexiGIM:
    """Fit GIM on protocol ``papalexi2021`` (``seed``) and build the demo's figures.

    Args:
        seed: seed of the held-out split, the fits and the predicted cells.
        options: extra GIM options (e.g. ``{"steps": 60, "refit_steps": 20}`` for a smoke
            test).
        progress: progress bars of the fits (default: on unless CAUSALPERT_PROGRESS=0).
    """
    import matplotlib.pyplot as plt

    from .. import plotting as pl

    data = load_protocol("papalexi2021", seed=seed)
    options = dict(options or {})
    genes = list(data.train.var_names)
    measured = list(data.intended_targets.values())
    for g in (*SHOWN_HELD_OUT, UNSEEN, *HUBS):
        if g not in measured:
            raise ValueError(f"{g} is not a measured knockout of papalexi2021 ({measured})")

    # (a) blind fit: opaque labels, no intended targets
    blind, t_all = _fit(data.fit_all, data.fit_all_kwargs, seed=seed, options=options,
                        progress=progress)
    scores = blind.target_scores(list(data.intended_targets))
    ranks = _rank_table(scores, data.intended_targets)
    graph = blind.graph()

    # (b) 80 % of each knockout's cells, without JAK2; intended-target prior on
    pert = data.train.obs[data.fit_kwargs["perturbation_key"]].astype(str)
    train = data.train[(pert != UNSEEN).to_numpy()].copy()
    held, t_train = _fit(train, data.fit_kwargs, seed=seed, options=options,
                         progress=progress)
    control = data.x_control.mean(0)
    test = data.tests["id"]
    test_pert = test.obs[data.fit_kwargs["perturbation_key"]].astype(str).to_numpy()
    unseen = next(f for f in data.folds if f.label == UNSEEN).tests["unseen_ko"]
    panels = [(g, test[test_pert == g], f"{g}: {int((test_pert == g).sum())} held-out cells")
              for g in SHOWN_HELD_OUT]
    panels.append((UNSEEN, unseen, f"{UNSEEN}: never seen in training, predicted from its "
                                   f"gene name ({unseen.n_obs} observed cells)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.0), squeeze=False)
    pearson = {}
    for ax, (g, obs, title) in zip(axes[0], panels, strict=True):
        pred = held.predict([g], n_cells=500, seed=seed)
        observed = pd.Series(_mean(obs) - control, index=genes)
        predicted = pd.Series(_mean(pred[:, genes]) - control, index=genes)
        pl.shift_scatter(predicted, observed, top=5, ax=ax)
        pearson[g] = float(np.corrcoef(predicted, observed)[0, 1])
        ax.set_title(f"{title}\n{ax.get_title()}", fontsize=9)
    fig.tight_layout()
    sections = [Section(
        "Predicted vs observed shift per gene (Papalexi 2021, CRISPR knockouts in THP-1)",
        f"GIM (intended-target prior on) was fitted on 80 % of the cells of every knockout "
        f"except {UNSEEN} (all control cells), {len(genes)} modelled genes. For "
        f"{' and '.join(SHOWN_HELD_OUT)} it predicts cells that are compared with the 20 % it "
        f"never saw; {UNSEEN} it never saw at all and predicts from the name of the knocked-out "
        "gene alone. Values are log-normalised expression.",
        figure=fig,
        caption="One point per modelled gene: observed shift (x; mean of the observed cells − "
                "mean of the control cells) against GIM's predicted shift (y; mean of 500 "
                "predicted cells − control mean). Dashed line: prediction = observation. "
                "Labelled: the 5 genes with the largest shift. Title: Pearson r over all "
                "genes. Read: points along the diagonal, r near 1 = the knockout's effect is "
                "right; a cloud around 0 with a few far points is typical, since a knockout "
                "moves few genes.")]

    n = len(genes)
    mean_rank = float(ranks[f"rank (of {n})"].mean())
    sections.append(Section(
        "Rank of each knocked-out gene (Papalexi 2021, blind fit on all cells)",
        f"GIM was fitted on all cells with opaque labels (ko_00 …) and no intended targets, "
        f"so it has to find which gene each knockout hits. Rank of the knocked-out gene among "
        f"the {n} modelled genes by GIM's target score (1 = top; {(n + 1) / 2:.1f} = chance on "
        f"average); mean rank here {mean_rank:.1f}. Only the 9 knockouts whose gene is "
        "measured can be scored.", table=ranks))

    nodes = _pathway_nodes(graph, measured)
    fig, ax = plt.subplots(figsize=(7.5, 7.5))
    n_edges = 2 * len(nodes)
    pl.network(graph.loc[nodes, nodes], top_k=n_edges, signed=True, highlight=measured,
               highlight_label="measured knocked-out gene", ax=ax)
    ax.set_title(f"GIM network around the IFN-γ pathway (blind fit on all cells): "
                 f"the {n_edges} strongest edges among {len(nodes)} genes", fontsize=9)
    sections.append(Section(
        "Learned network around the pathway genes (Papalexi 2021)", figure=fig,
        caption=f"Nodes: the 9 measured knocked-out genes (filled) and the {len(nodes) - 9} "
                f"genes most strongly connected to {', '.join(HUBS)} in GIM's learned graph "
                f"(blind fit on all cells). Arrows: the {n_edges} strongest edges among these "
                "genes, i → j = i regulates j; wider = larger |strength|; red = positive, "
                "blue = negative. Read: the IFN-γ → IFNGR → JAK → STAT1 → IRF1 → PD-L1 "
                "axis studied by Papalexi et al. should appear as a connected group; edges are "
                "learned from the knockouts and the control cells' variation, so they are "
                "hypotheses, not a verified network."))
    return PapalexiGIM(sections=sections, ranks=ranks, seconds={"all": t_all, "train": t_train},
                       pearson=pearson)


def _pathway_nodes(graph: pd.DataFrame, measured: list[str]) -> list[str]:
    """``HUBS``, the other measured genes, then the ``N_NEIGHBOURS`` genes with the strongest
    edge (either direction) to a hub."""
    G = graph.abs()
    strength = pd.concat([G.loc[list(HUBS)].max(0), G[list(HUBS)].max(1)], axis=1).max(1)
    strength = strength.drop(index=[g for g in measured if g in strength.index])
    neighbours = strength.sort_values(ascending=False, kind="stable").index[:N_NEIGHBOURS]
    return [*HUBS, *[g for g in measured if g not in HUBS], *neighbours]


def _rank_table(scores: pd.DataFrame, intended: dict[str, str]) -> pd.DataFrame:
    n = scores.shape[1]
    rows = {}
    for r in evaluate_target_ranks(scores, intended, split="targets"):
        if r["metric"] == "target_rank":
            p = r["context"]
            top = scores.loc[p].sort_values(ascending=False, kind="stable").index[:3]
            rows[p] = {"knocked-out gene": intended[p], f"rank (of {n})": r["value"],
                       "GIM top 3": ", ".join(top)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("label (blind fit)")
