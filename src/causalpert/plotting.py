"""Plots (``cp.pl``): one contract — ``ax=None`` in, Axes out, nothing saved or shown.

- ``distributions``: predicted vs observed marginals of a few genes in one context;
- ``target_heatmap``: perturbation × gene target probabilities, intended targets boxed;
- ``network``: a gene network on a circle, coloured against a reference network or by sign;
- ``shift_scatter``: predicted vs observed mean shift per gene, with Pearson r;
- ``benchmark_bars``: mean ± sd over seeds per method from a benchmark ``summary.csv``;
- ``reliability``: reliability diagram of probabilities against binary truth, with the ECE;
- ``design_curves``: the design benchmark's curves (metric vs perturbations chosen) per strategy.

Examples:
    >>> import causalpert as cp
    >>> adata = cp.datasets.sachs()
    >>> ctrl = adata[adata.obs["perturbation"] == "cd3cd28"]
    >>> u0126 = adata[adata.obs["perturbation"] == "cd3cd28+u0126"]
    >>> ax = cp.pl.distributions(u0126, u0126, control=ctrl, genes=["pmek", "p44/42"])

    Target scores of a fitted model (here the fast ``de`` baseline; ``cp.GIM`` gives
    probabilities) with the intended targets boxed:

    >>> de = cp.MODELS["de"](seed=0).fit(adata, perturbation_key="perturbation",
    ...                                  dose_key="dose", control=adata.uns["control"])
    >>> ax = cp.pl.target_heatmap(de.target_probabilities(),
    ...                           intended=adata.uns["intended_targets"])

    A learned network next to the consensus network (``model.graph()`` of a fitted GIM on
    the left; the consensus itself stands in for it here):

    >>> import matplotlib.pyplot as plt
    >>> genes = adata.var_names
    >>> truth = pd.DataFrame(adata.uns["consensus_graph"].astype(float), genes, genes)
    >>> fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.5))
    >>> left = cp.pl.network(truth, reference=truth, ax=left)  # model.graph(), reference=truth
    >>> right = cp.pl.network(truth, ax=right)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PREDICTED, OBSERVED, CONTROL = "tab:blue", "tab:orange", "0.6"
HIT, FALSE_EDGE, MISSED = "tab:green", "tab:red", "0.45"
POSITIVE, NEGATIVE, HIGHLIGHT = "tab:red", "tab:blue", "#fde0a8"
SUMMARY_COLUMNS = ("method", "split", "metric", "mean", "sd")


def _axes(ax, figsize=(6, 4)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize).add_subplot()


def _dense(adata, genes, what: str) -> np.ndarray:
    from .data.prepare import dense_matrix

    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        raise ValueError(f"unknown gene(s) {missing} in {what}: choose from "
                         f"{list(adata.var_names)}")
    return dense_matrix(adata[:, list(genes)])


def higher_is_better(metric: str) -> bool | None:
    """Direction of a metric name (``METRICS``; ``*_top*`` higher, ``*seconds`` lower), or
    None when unknown."""
    from .metrics import METRICS

    if metric in METRICS:
        return METRICS[metric].higher_is_better
    if "_top" in metric:
        return True
    if metric.endswith("seconds"):
        return False
    return None


def distributions(predicted, observed, *, genes=None, control=None, ax=None):
    """Per gene, violins of control (grey), predicted (blue) and observed (orange) cells.

    Read: the closer the blue violin is to the orange one (position *and* shape), the better;
    the grey one shows where "no effect" would put the cells.

    Args:
        predicted, observed: AnnData of one context (cells × genes; they need the genes shown).
        genes: genes to show (default: the 6 with the largest shift of the observed mean from
            the control mean, or the first 6 without control).
        control: AnnData of control cells (optional).
        ax: Axes to draw on (default: a new figure).

    Returns:
        The Axes.
    """
    if predicted.n_obs == 0 or observed.n_obs == 0:
        raise ValueError(f"predicted ({predicted.n_obs} cells) and observed ({observed.n_obs} "
                         "cells) both need cells: check the context you selected")
    if control is not None and control.n_obs == 0:
        raise ValueError("control has no cells: pass control=None or the control context")
    if genes is None:
        names = list(observed.var_names)
        if control is not None:
            shift = np.abs(_dense(observed, names, "observed").mean(0)
                           - _dense(control, names, "control").mean(0))
            genes = [names[i] for i in np.argsort(-shift, kind="stable")[:6]]
        else:
            genes = names[:6]
    genes = [genes] if isinstance(genes, str) else list(genes)
    if not genes:
        raise ValueError("genes is empty: pass at least one gene name")
    groups = [(_dense(predicted, genes, "predicted"), PREDICTED, "predicted"),
              (_dense(observed, genes, "observed"), OBSERVED, "observed")]
    if control is not None:
        groups.insert(0, (_dense(control, genes, "control"), CONTROL, "control"))
    ax = _axes(ax, figsize=(1.3 * len(genes) + 2, 3.5))
    pos = np.arange(len(genes))
    width = 0.8 / len(groups)
    for k, (x, colour, label) in enumerate(groups):
        offset = (k - (len(groups) - 1) / 2) * width
        parts = ax.violinplot([x[:, j] for j in range(len(genes))], positions=pos + offset,
                              widths=0.95 * width, showmedians=True, showextrema=False)
        for body in parts["bodies"]:
            body.set_facecolor(colour)
            body.set_edgecolor(colour)
            body.set_alpha(0.65)
        parts["cmedians"].set_color("black")
        parts["cmedians"].set_linewidth(0.8)
        ax.plot([], [], color=colour, lw=6, alpha=0.65, label=f"{label} ({len(x):,} cells)")
    ax.set_xticks(pos, genes, rotation=45, ha="right")
    ax.set_ylabel("expression")
    ax.legend(fontsize=7, loc="best")
    return ax


def target_heatmap(probs: pd.DataFrame, *, intended: dict[str, str] | None = None, ax=None):
    """Target probabilities (rows perturbations, columns genes); intended targets boxed in red.

    Read: a bright cell inside each red box means the model found the intended target; bright
    cells elsewhere are other genes it thinks the perturbation acts on directly.

    Args:
        probs: perturbation × gene table (``model.target_probabilities()``): probabilities in
            [0, 1] share one colour scale; other scores (e.g. the ``de`` baseline's effect
            sizes) are coloured from their minimum to their maximum.
        intended: perturbation → intended target gene ("" or missing: none); rows not in
            ``probs`` are ignored.
        ax: Axes to draw on.

    Returns:
        The Axes (one image with ``probs.shape`` cells, one Rectangle per boxed target).
    """
    if not isinstance(probs, pd.DataFrame):
        raise TypeError(f"probs must be a DataFrame (perturbation × gene), got "
                        f"{type(probs).__name__}")
    if probs.empty:
        raise ValueError("the target-probability table is empty: no perturbations or genes")
    values = probs.to_numpy(dtype=float)
    boxes = []
    for i, p in enumerate(probs.index):
        gene = (intended or {}).get(p)
        if gene:
            if gene not in probs.columns:
                raise ValueError(f"intended target {gene!r} of {p!r} is not a column of probs "
                                 f"(genes: {list(probs.columns)})")
            boxes.append((i, list(probs.columns).index(gene)))
    ax = _axes(ax, figsize=(0.5 * probs.shape[1] + 3, 0.4 * probs.shape[0] + 1.5))
    finite = values[np.isfinite(values)]
    is_prob = finite.size == 0 or (finite.min() >= 0 and finite.max() <= 1)
    lo, hi = (0.0, 1.0) if is_prob else (finite.min(), finite.max())
    im = ax.imshow(values, cmap="viridis", vmin=lo, vmax=hi, aspect="auto")
    ax.set_xticks(range(probs.shape[1]), probs.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(probs.shape[0]), probs.index, fontsize=8)
    ax.set_xlabel("gene")
    ax.set_ylabel("perturbation")
    ax.figure.colorbar(im, ax=ax, label="target probability" if is_prob else "target score",
                       fraction=0.04)
    if values.size <= 400:  # small tables: print the numbers too
        for (i, j), v in np.ndenumerate(values):
            bright = hi > lo and (v - lo) / (hi - lo) > 0.6
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                    color="black" if bright else "white")
    from matplotlib.patches import Rectangle

    for k, (i, j) in enumerate(boxes):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2,
                               label="intended target" if k == 0 else None))
    if boxes:
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.25), fontsize=7, frameon=False)
    return ax


def _edge_mask(G: np.ndarray, ref, top_k, threshold) -> np.ndarray:
    if top_k is not None and threshold is not None:
        raise ValueError("give top_k or threshold, not both")
    if threshold is not None:
        return G >= threshold
    if top_k is None:
        top_k = int(ref.sum()) if ref is not None else min(20, G.size - len(G))
    if top_k < 0:
        raise ValueError(f"top_k must be ≥ 0, got {top_k}")
    keep = np.zeros(G.size, dtype=bool)
    keep[np.argsort(-G, axis=None, kind="stable")[:top_k]] = True
    return keep.reshape(G.shape) & (G > 0)


def network(graph: pd.DataFrame, *, reference=None, top_k: int | None = None,
            threshold: float | None = None, signed: bool = False, highlight=None,
            highlight_label: str = "highlighted", ax=None):
    """A directed gene network on a circle; edge (i, j) = ``graph.iloc[i, j]`` (i → j).

    Keeps the ``top_k`` strongest edges by |weight| (default: as many as the reference has,
    else 20) or those with |weight| ≥ ``threshold``; arrow width grows with |weight|. With a
    reference: green = kept and in the reference, red = kept but not in it, dashed grey =
    reference edges not kept (missed). Without one and with ``signed``: red = positive
    weight, blue = negative.

    Args:
        graph: gene × gene weights (``model.graph()``); the diagonal is ignored.
        reference: [d, d] 0/1 array or DataFrame, (i, j) = edge i → j (e.g.
            ``adata.uns["consensus_graph"]``).
        top_k, threshold: which edges to keep (give at most one).
        signed: colour kept edges by the sign of their weight (not with ``reference``).
        highlight: genes whose nodes are filled (e.g. the perturbed ones).
        highlight_label: legend entry of the filled nodes (with ``signed``).
        ax: Axes to draw on.

    Returns:
        The Axes; each arrow is an annotation (``ax.texts`` with an ``arrow_patch``).
    """
    if not isinstance(graph, pd.DataFrame):
        raise TypeError(f"graph must be a gene × gene DataFrame, got {type(graph).__name__}")
    if graph.shape[0] != graph.shape[1] or list(graph.index) != list(graph.columns):
        raise ValueError(f"graph must be square with the same genes as index and columns, got "
                         f"shape {graph.shape}")
    if graph.empty:
        raise ValueError("graph is empty: no genes")
    if signed and reference is not None:
        raise ValueError("give reference or signed=True, not both (both set the edge colour)")
    highlight = [] if highlight is None else [highlight] if isinstance(highlight, str) \
        else list(highlight)
    unknown = [g for g in highlight if g not in graph.index]
    if unknown:
        raise ValueError(f"highlight gene(s) {unknown} are not nodes of the graph")
    W = graph.to_numpy(dtype=float)
    G = np.abs(W)
    np.fill_diagonal(G, 0)
    d = len(G)
    ref = None
    if reference is not None:
        if isinstance(reference, pd.DataFrame):
            reference = reference.reindex(index=graph.index, columns=graph.columns)
            if reference.isna().any(axis=None):
                raise ValueError("reference DataFrame lacks some genes of graph")
        ref = np.asarray(reference, dtype=float) != 0
        if ref.shape != G.shape:
            raise ValueError(f"reference has shape {ref.shape}, the graph {G.shape}")
        np.fill_diagonal(ref, False)
    keep = _edge_mask(G, ref, top_k, threshold)
    ax = _axes(ax, figsize=(5, 5))
    angle = np.pi / 2 - 2 * np.pi * np.arange(d) / d
    xy = np.c_[np.cos(angle), np.sin(angle)]
    fill = [HIGHLIGHT if n in highlight else "white" for n in graph.index]
    ax.scatter(*xy.T, s=1100, color=fill, edgecolor="black", zorder=3)
    for n, (x, y) in zip(graph.index, xy, strict=True):
        ax.text(x, y, str(n), ha="center", va="center", fontsize=6 if len(str(n)) > 6 else 7,
                zorder=4)
    w = G[keep]
    wmin, wmax = (w.min(), w.max()) if w.size else (1.0, 1.0)

    def width(v):  # 0.8 (weakest kept edge) to 3 (strongest); 1.5 when all are equal
        return 1.5 if wmax == wmin else 0.8 + 2.2 * (v - wmin) / (wmax - wmin)

    def arrow(i, j, **kw):
        # bend towards the centre, so chords pass no node on the circle; i → j and j → i
        # bend by different amounts, so both stay visible
        (x0, y0), (x1, y1) = xy[i], xy[j]
        inward = (x1 - x0) * (y0 + y1) - (y1 - y0) * (x0 + x1) >= 0
        rad = (0.1 if i < j else 0.25) * (1 if inward else -1)
        ax.annotate("", xy=xy[j], xytext=xy[i], zorder=2, arrowprops=dict(
            arrowstyle="-|>", shrinkA=17, shrinkB=17, connectionstyle=f"arc3,rad={rad}", **kw))

    for i, j in zip(*np.nonzero(keep), strict=True):
        if ref is not None:
            colour = HIT if ref[i, j] else FALSE_EDGE
        elif signed:
            colour = POSITIVE if W[i, j] > 0 else NEGATIVE
        else:
            colour = "black"
        arrow(i, j, color=colour, lw=width(G[i, j]))
    if signed:
        n_pos = int((keep & (W > 0)).sum())
        for colour, label in ((POSITIVE, f"positive ({n_pos})"),
                              (NEGATIVE, f"negative ({int(keep.sum()) - n_pos})")):
            ax.plot([], [], color=colour, label=label)
        if highlight:
            ax.scatter([], [], s=60, color=HIGHLIGHT, edgecolor="black", label=highlight_label)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.08), ncol=3, fontsize=7,
                  frameon=False)
    if ref is not None:
        for i, j in zip(*np.nonzero(ref & ~keep), strict=True):
            arrow(i, j, color=MISSED, lw=0.8, linestyle="--")
        hits = int((keep & ref).sum())
        for colour, ls, label in (
                (HIT, "-", f"in reference ({hits})"),
                (FALSE_EDGE, "-", f"not in reference ({int(keep.sum()) - hits})"),
                (MISSED, "--", f"missed ({int((ref & ~keep).sum())})")):
            ax.plot([], [], color=colour, linestyle=ls, label=label)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.08), ncol=3, fontsize=7,
                  frameon=False)
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def shift_scatter(predicted, observed, *, labels=None, top: int = 5, ax=None):
    """Predicted vs observed shift per gene (e.g. mean − control mean), one point per gene.

    Read: points on the dashed diagonal are predicted exactly; the title gives Pearson r over
    all genes (1 = the pattern of shifts is right, 0 = unrelated). The ``top`` genes with the
    largest |observed| or |predicted| shift are labelled.

    Args:
        predicted, observed: one number per gene (arrays, or Series with the same index).
        labels: gene names (default: the index of a Series, else none).
        top: how many genes to label (0: none).
        ax: Axes to draw on.

    Returns:
        The Axes (one scatter with a point per gene, ``top`` labels in ``ax.texts``, title
        ``"Pearson r = …"``).
    """
    if labels is None:
        for v in (observed, predicted):
            if isinstance(v, pd.Series):
                labels = list(v.index)
                break
    if isinstance(predicted, pd.Series) and isinstance(observed, pd.Series):
        if not predicted.index.equals(observed.index):
            raise ValueError("predicted and observed Series must have the same index (genes)")
    pred = np.asarray(predicted, dtype=float).ravel()
    obs = np.asarray(observed, dtype=float).ravel()
    if pred.shape != obs.shape:
        raise ValueError(f"predicted has {pred.size} values, observed {obs.size}: give one per "
                         "gene to both")
    if pred.size == 0:
        raise ValueError("no genes: predicted and observed are empty")
    if labels is not None and len(labels) != pred.size:
        raise ValueError(f"{len(labels)} labels for {pred.size} genes")
    if top < 0:
        raise ValueError(f"top must be ≥ 0, got {top}")
    ok = np.isfinite(pred) & np.isfinite(obs)
    r = (float(np.corrcoef(pred[ok], obs[ok])[0, 1])
         if ok.sum() > 1 and pred[ok].std() > 0 and obs[ok].std() > 0 else float("nan"))
    ax = _axes(ax, figsize=(4.5, 4.2))
    ax.axhline(0, color="0.85", lw=0.8, zorder=0)
    ax.axvline(0, color="0.85", lw=0.8, zorder=0)
    span = np.abs(np.r_[pred[ok], obs[ok]]).max() if ok.any() else 1.0
    span = 1.08 * (span or 1.0)
    ax.plot([-span, span], [-span, span], color="0.5", ls="--", lw=0.8, zorder=1)
    ax.scatter(obs, pred, s=12, color=PREDICTED, alpha=0.7, edgecolor="none", zorder=2)
    if labels is not None and top:
        size = np.where(ok, np.maximum(np.abs(pred), np.abs(obs)), -np.inf)
        shown = np.argsort(-size, kind="stable")[:min(top, int(ok.sum()))]
        # left to right, labels alternate above and below their point, so neighbours that
        # sit at the same height do not overprint each other
        for k, i in enumerate(sorted(shown, key=lambda i: (obs[i], pred[i]))):
            ax.annotate(str(labels[i]), (obs[i], pred[i]), xytext=(3, 4 if k % 2 == 0 else -10),
                        textcoords="offset points", fontsize=7)
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_aspect("equal")
    ax.set_xlabel("observed shift")
    ax.set_ylabel("predicted shift")
    ax.set_title(f"Pearson r = {r:.2f} ({pred.size} genes)" if r == r
                 else f"Pearson r = n/a ({pred.size} genes)", fontsize=9)
    return ax


def benchmark_bars(summary: pd.DataFrame, *, metric: str = "edist_rel", split: str = "id",
                   ax=None):
    """Mean ± sd over seeds of ``metric`` on ``split``, one bar per method, best first.

    Args:
        summary: a runner ``summary.csv`` table (columns protocol, method, split, metric, mean,
            sd, n_seeds) of one protocol.
        metric, split: which numbers to show.
        ax: Axes to draw on.

    Returns:
        The Axes (one bar per method, height = its mean; ``edist_rel`` gets a dashed line at 1,
        the "no effect" prediction).
    """
    if not isinstance(summary, pd.DataFrame) or summary.empty:
        raise ValueError("the summary table is empty: pass summary.csv of a finished run")
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks column(s) {missing}: pass a runner summary.csv")
    rows = summary[(summary["metric"] == metric) & (summary["split"] == split)]
    if rows.empty:
        have = sorted(set(zip(summary["split"], summary["metric"], strict=True)))
        raise ValueError(f"no rows for metric {metric!r} on split {split!r} in the summary; "
                         f"it has (split, metric) {have}")
    if rows["method"].duplicated().any():
        raise ValueError("several rows per method: select one protocol of the summary first")
    higher = higher_is_better(metric)
    rows = rows.sort_values("mean", ascending=not higher)
    ax = _axes(ax, figsize=(5, 3))
    colours = ["tab:purple" if m.startswith("gim") else "tab:blue" for m in rows["method"]]
    sd = rows["sd"].fillna(0)
    bars = ax.bar(rows["method"].astype(str), rows["mean"], color=colours, capsize=3,
                  yerr=sd if (sd > 0).any() else None)  # one seed: no error bars
    ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=2)
    if metric == "edist_rel":
        ax.axhline(1.0, color="grey", linestyle="--", lw=0.8)
    better = "" if higher is None else (" (higher is better)" if higher
                                        else " (lower is better)")
    ax.set_ylabel(f"{metric}{better}", fontsize=8)
    ax.set_title(f"split {split}", fontsize=9)
    ax.tick_params(axis="x", rotation=45)
    ax.margins(y=0.12)
    return ax


def reliability(probabilities, truth, *, bins: int = 10, label: str | None = None, ax=None):
    """Reliability diagram: share of true pairs against mean probability per equal-width bin
    (``metrics.reliability_curve``), the diagonal as the calibrated line, ECE in the legend.

    Args:
        probabilities: probabilities in [0, 1] (e.g. ``model.target_probabilities()``, an
            ensemble's ``edge_probability()``), any shape.
        truth: booleans of the same shape (true targets, true edges).
        bins: number of equal-width bins.
        label: legend label (the ECE is appended); several calls can share one Axes.
        ax: Axes to draw on.

    Returns:
        The Axes (points sized by the bin's count).
    """
    from .metrics import expected_calibration_error, reliability_curve

    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(truth)
    curve = pd.DataFrame(reliability_curve(p, y, bins))
    ece = expected_calibration_error(p, y, bins)
    full = curve[curve["count"] > 0]
    ax = _axes(ax, figsize=(4, 4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", lw=0.8)
    size = 8 + 60 * full["count"] / full["count"].max()
    text = f"ECE {ece:.3f}" if label is None else f"{label} (ECE {ece:.3f})"
    ax.plot(full["mean_p"], full["share_true"], marker="", lw=1)
    ax.scatter(full["mean_p"], full["share_true"], s=size, label=text, zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean probability in bin", fontsize=8)
    ax.set_ylabel("share true", fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    return ax


DESIGN_PANELS = ("edist", "target_auroc", "graph_auprc")
DESIGN_COLOURS = {"acquisition": "tab:purple", "random": "0.45", "kcenter": "tab:green"}


def design_curves(results: pd.DataFrame, *, metrics=DESIGN_PANELS, ax=None):
    """The design benchmark's curves: per metric one panel of its value against the number of
    perturbations chosen, one line per strategy (mean over seeds) with a ± sd band.

    Args:
        results: rows of ``benchmark.design_protocol.run_design_benchmark`` (columns
            strategy, round, n_perturbations, metric, value; several seeds stack) of one
            ground truth (``sim``); the ``*_auc`` rows are ignored.
        metrics: one panel per metric, in order.
        ax: a sequence of ``len(metrics)`` Axes to draw on (default: a new figure, one row).

    Returns:
        The Axes, one per metric (a list).
    """
    need = ("strategy", "n_perturbations", "metric", "value")
    if not isinstance(results, pd.DataFrame) or results.empty:
        raise ValueError("the results table is empty: pass results.csv of a design run")
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise ValueError(f"results lack column(s) {missing}: pass a design results.csv")
    if "sim" in results.columns and results["sim"].nunique() > 1:
        raise ValueError("rows of several ground truths: select one sim of the results first")
    curves = results[~results["metric"].astype(str).str.endswith("_auc")]
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.figure(figsize=(4 * len(metrics), 3.4)).subplots(1, len(metrics),
                                                                   squeeze=False)[0]
    axes = list(np.atleast_1d(ax))
    if len(axes) != len(metrics):
        raise ValueError(f"ax must hold {len(metrics)} Axes (one per metric), got {len(axes)}")
    for a, metric in zip(axes, metrics, strict=True):
        rows = curves[curves["metric"] == metric]
        if rows.empty:
            raise ValueError(f"no rows for metric {metric!r}; the results have "
                             f"{sorted(curves['metric'].unique())}")
        for strategy, g in rows.groupby("strategy", sort=False):
            stats = g.groupby(g["n_perturbations"].astype(float))["value"].agg(["mean", "std"])
            sd = stats["std"].fillna(0.0)
            extra = str(strategy).startswith("random-")  # further random draws: thin grey
            colour = "0.75" if extra else DESIGN_COLOURS.get(str(strategy))
            a.plot(stats.index, stats["mean"], marker="o", ms=3, lw=0.8 if extra else 1.2,
                   color=colour, label=str(strategy))
            if not extra:
                a.fill_between(stats.index, stats["mean"] - sd, stats["mean"] + sd,
                               alpha=0.2, color=colour, lw=0)
        higher = higher_is_better(metric)
        better = "" if higher is None else (" (higher is better)" if higher
                                            else " (lower is better)")
        a.set_title("graph" if metric.startswith("graph") else "full_ood", fontsize=9)
        a.set_xlabel("perturbations measured", fontsize=8)
        a.set_ylabel(f"{metric}{better}", fontsize=8)
    axes[0].legend(fontsize=7)
    return axes
