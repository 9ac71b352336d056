"""Scoring a fitted model on held-out contexts: tidy rows {split, context, metric, value}."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from ..data.prepare import dense_matrix
from ..metrics import (
    delta_pearson,
    edist,
    edist_rel,
    graph_auprc,
    mean_rmse,
    mmd,
    sinkhorn,
    target_auprc,
    target_auroc,
    target_rank,
)

#: scored per test context by default. ``sinkhorn`` (ε = metrics.SINKHORN_EPSILON) is opt-in:
#: with ε = 1 on squared costs of ~10²–10³ it takes 1–4 s per far-off context, too slow for
#: thousands of contexts per run.
DISTRIBUTION_METRICS = ("edist", "edist_rel", "mmd", "mean_rmse", "delta_pearson")


def score_cells(x_pred, x_obs, x_control, *, metrics=DISTRIBUTION_METRICS,
                bandwidth_base: float | None = None) -> dict[str, float]:
    """All distribution/mean metrics of one context (pinned definitions in ``metrics``)."""
    mu0 = x_control.mean(0)
    fns = {
        "edist": lambda: edist(x_pred, x_obs),
        "edist_rel": lambda: edist_rel(x_pred, x_obs, x_control=x_control),
        "mmd": lambda: mmd(x_pred, x_obs, x_control=x_control, bandwidth_base=bandwidth_base),
        "sinkhorn": lambda: sinkhorn(x_pred, x_obs),
        "mean_rmse": lambda: mean_rmse(x_pred, x_obs),
        "delta_pearson": lambda: delta_pearson(x_pred, x_obs, mu_control=mu0),
    }
    return {m: fns[m]() for m in metrics}


def iter_contexts(adata: ad.AnnData, *, perturbation_key="perturbation", dose_key="dose"):
    """(perturbation, dose, cells) of every context of a test split, in a stable order."""
    x = dense_matrix(adata)
    keys = adata.obs[[perturbation_key, dose_key]].astype({perturbation_key: str})
    for (p, c), rows in keys.groupby([perturbation_key, dose_key], sort=True).indices.items():
        yield p, float(c), x[rows]


def evaluate_prediction(model, test: ad.AnnData, x_control: np.ndarray, *, split: str,
                        features=None, metrics=DISTRIBUTION_METRICS, n_cells: int | None = None,
                        mode: str = "map", seed: int = 0, top_genes: int | None = None
                        ) -> list[dict]:
    """Predict every context of ``test`` in one call and score it against the observed cells.

    ``top_genes`` = k adds ``delta_pearson_top{k}``: ``delta_pearson`` over the k genes whose
    observed mean moves most from the control mean, |mean(X) − μ₀| (the genes a perturbation
    is about; over all genes, mostly unmoved ones dilute the correlation)."""
    ctx = list(iter_contexts(test))
    n = n_cells or max(len(c[2]) for c in ctx)
    pred = model.predict([c[0] for c in ctx], [c[1] for c in ctx], features=features,
                         n_cells=n, mode=mode, seed=seed)
    xp = pred.X.reshape(len(ctx), n, -1)
    from ..metrics.distributions import _median_distance

    base = _median_distance(np.asarray(x_control, dtype=np.float64))
    rows = []
    for i, (p, c, x_obs) in enumerate(ctx):
        scores = score_cells(xp[i], x_obs, x_control, metrics=metrics, bandwidth_base=base)
        if top_genes:
            mu0 = np.asarray(x_control, dtype=np.float64).mean(0)
            top = np.argsort(-np.abs(x_obs.mean(0) - mu0))[:top_genes]
            scores[f"delta_pearson_top{top_genes}"] = delta_pearson(
                xp[i][:, top], x_obs[:, top], mu_control=mu0[top])
        for m, v in scores.items():
            rows.append({"split": split, "context": f"{p}@{c:g}", "metric": m, "value": v})
    return rows


def evaluate_targets(scores: pd.DataFrame, truth: pd.DataFrame, *, split: str) -> list[dict]:
    """target_auroc / target_auprc over all (perturbation, gene) pairs of ``scores``."""
    labels = truth.loc[scores.index, scores.columns].to_numpy(bool)
    s = scores.to_numpy(dtype=np.float64)
    return [{"split": split, "context": "all", "metric": "target_auroc",
             "value": target_auroc(s, labels)},
            {"split": split, "context": "all", "metric": "target_auprc",
             "value": target_auprc(s, labels)}]


def evaluate_target_ranks(scores: pd.DataFrame, intended: dict[str, str], *, split: str
                          ) -> list[dict]:
    """Per perturbation with one intended target: ``target_rank`` (1 = best, ties averaged)
    ``target_top1`` and ``target_top2`` (1 if that rank ≤ 1, ≤ 2)."""
    rows = []
    for p in scores.index:
        if p not in intended:
            continue
        r = target_rank(scores.loc[p].to_numpy(), list(scores.columns).index(intended[p]))
        rows += [{"split": split, "context": p, "metric": "target_rank", "value": r},
                 {"split": split, "context": p, "metric": "target_top1", "value": float(r <= 1)},
                 {"split": split, "context": p, "metric": "target_top2", "value": float(r <= 2)}]
    return rows


def evaluate_graph(graph: pd.DataFrame, true_adjacency: np.ndarray, *, split: str = "graph"
                   ) -> list[dict]:
    """graph_auprc of |edge strength| against the true adjacency."""
    return [{"split": split, "context": "all", "metric": "graph_auprc",
             "value": graph_auprc(np.abs(graph.to_numpy()), true_adjacency)}]
