"""Plots (``cp.pl``): one contract — ``ax=None`` in, Axes out, nothing saved or shown.

- ``distributions``: predicted vs observed marginals of a few genes in one context;
- ``target_heatmap``: perturbation × gene target probabilities, intended targets boxed;
- ``network``: a gene network on a circle, coloured against a reference network;
- ``benchmark_bars``: mean ± sd over seeds per method from a benchmark ``summary.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _axes(ax, figsize=(6, 4)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize).add_subplot()


def _dense(adata, genes) -> np.ndarray:
    from .data.prepare import dense_matrix

    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        raise ValueError(f"unknown gene(s) {missing}: choose from {list(adata.var_names)}")
    return dense_matrix(adata[:, list(genes)])


def distributions(predicted, observed, *, genes=None, control=None, ax=None):
    """Violins of predicted (left, blue) vs observed (right, orange) cells per gene, with the
    control cells' median as a grey tick. Read: the closer the two halves, the better.

    Args:
        predicted, observed: AnnData of one context (same genes).
        genes: genes to show (default: the 6 with the largest observed shift from control, or
            the first 6).
        control: AnnData of control cells (optional).
    """
    if predicted.n_obs == 0 or observed.n_obs == 0:
        raise ValueError("predicted and observed need cells")
    if genes is None:
        names = list(observed.var_names)
        if control is not None:
            shift = np.abs(_dense(observed, names).mean(0) - _dense(control, names).mean(0))
            genes = [names[i] for i in np.argsort(-shift)[:6]]
        else:
            genes = names[:6]
    xp, xo = _dense(predicted, genes), _dense(observed, genes)
    ax = _axes(ax, figsize=(1.2 * len(genes) + 2, 3.5))
    pos = np.arange(len(genes))
    for x, side, colour in ((xp, -1, "tab:blue"), (xo, 1, "tab:orange")):
        parts = ax.violinplot([x[:, j] for j in range(len(genes))], positions=pos + 0.2 * side,
                              widths=0.4, showmedians=True)
        for body in parts["bodies"]:
            body.set_facecolor(colour)
            body.set_alpha(0.6)
    if control is not None:
        xc = _dense(control, genes)
        ax.scatter(pos, np.median(xc, 0), marker="_", s=300, color="grey", label="control median")
    ax.set_xticks(pos, genes, rotation=45, ha="right")
    ax.plot([], [], color="tab:blue", lw=6, alpha=0.6, label="predicted")
    ax.plot([], [], color="tab:orange", lw=6, alpha=0.6, label="observed")
    ax.legend(fontsize=7, loc="best")
    return ax


def target_heatmap(probs: pd.DataFrame, *, intended: dict[str, str] | None = None, ax=None):
    """Target probabilities (rows perturbations, columns genes); intended targets boxed in black.
    Read: a dark cell inside each box means the model found the intended target."""
    if probs.empty:
        raise ValueError("the target-probability table is empty")
    ax = _axes(ax, figsize=(0.45 * probs.shape[1] + 3, 0.4 * probs.shape[0] + 1.5))
    im = ax.imshow(probs.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(probs.shape[1]), probs.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(probs.shape[0]), probs.index, fontsize=8)
    ax.figure.colorbar(im, ax=ax, label="target probability", fraction=0.04)
    from matplotlib.patches import Rectangle

    for i, p in enumerate(probs.index):
        gene = (intended or {}).get(p)
        if gene:
            if gene not in probs.columns:
                raise ValueError(f"intended target {gene!r} of {p!r} is not a column")
            j = list(probs.columns).index(gene)
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red",
                                   lw=2, label="intended target" if i == 0 else None))
    return ax


def network(graph: pd.DataFrame, *, reference=None, top_k: int | None = None,
            threshold: float | None = None, ax=None):
    """Directed network on a circle; edge (i, j) = ``graph.loc[i, j]`` (i → j). Keeps the
    ``top_k`` strongest edges (default: as many as the reference has, else 20) or those with
    |weight| ≥ ``threshold``. With a reference: green = in the reference, red = not, dashed
    grey = reference edges missed."""
    G = np.abs(graph.to_numpy(dtype=float))
    np.fill_diagonal(G, 0)
    d = len(G)
    ref = None if reference is None else np.asarray(reference, dtype=bool)
    if ref is not None and ref.shape != G.shape:
        raise ValueError(f"reference has shape {ref.shape}, the graph {G.shape}")
    if threshold is None:
        k = top_k or (int(ref.sum()) if ref is not None else min(20, d * (d - 1)))
        order = np.argsort(-G, axis=None)[:k]
        keep = np.zeros(G.size, dtype=bool)
        keep[order] = True
        keep = keep.reshape(G.shape) & (G > 0)
    else:
        keep = G >= threshold
    ax = _axes(ax, figsize=(5, 5))
    angle = 2 * np.pi * np.arange(d) / d
    xy = np.c_[np.cos(angle), np.sin(angle)]
    ax.scatter(*xy.T, s=500, color="white", edgecolor="black", zorder=3)
    for n, (x, y) in zip(graph.index, xy, strict=True):
        ax.text(x, y, str(n), ha="center", va="center", fontsize=7, zorder=4)
    wmax = G[keep].max() if keep.any() else 1.0

    def arrow(i, j, **kw):
        ax.annotate("", xy=xy[j], xytext=xy[i], zorder=2, arrowprops=dict(
            arrowstyle="-|>", shrinkA=12, shrinkB=12, connectionstyle="arc3,rad=0.1", **kw))

    for i, j in zip(*np.nonzero(keep), strict=True):
        colour = "black" if ref is None else ("tab:green" if ref[i, j] else "tab:red")
        arrow(i, j, color=colour, lw=0.8 + 2.2 * G[i, j] / wmax)
    if ref is not None:
        for i, j in zip(*np.nonzero(ref & ~keep), strict=True):
            arrow(i, j, color="grey", lw=0.8, linestyle="--")
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def benchmark_bars(summary: pd.DataFrame, *, metric: str = "edist_rel", split: str = "id",
                   ax=None):
    """Mean ± sd over seeds of ``metric`` on ``split`` per method (a runner ``summary.csv``)."""
    rows = summary[(summary["metric"] == metric) & (summary["split"] == split)]
    if rows.empty:
        raise ValueError(f"no rows for metric {metric!r} on split {split!r} in the summary")
    rows = rows.sort_values("mean")
    ax = _axes(ax, figsize=(5, 3))
    ax.bar(rows["method"], rows["mean"], yerr=rows["sd"], color="tab:blue", capsize=3)
    ax.set_ylabel(f"{split}: {metric}")
    ax.tick_params(axis="x", rotation=45)
    return ax
