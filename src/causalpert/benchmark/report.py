"""Printing a benchmark summary: one row per method, the headline metrics as columns."""

from __future__ import annotations

import pandas as pd

#: (split, metric) columns shown in the printed table, in order.
HEADLINE = (
    ("id", "edist_rel"), ("id", "edist"), ("partial_ood", "edist"), ("partial_ood", "edist_rel"),
    ("full_ood", "edist"), ("full_ood", "edist_rel"), ("id", "target_auprc"),
    ("id_shift", "target_auprc"), ("id_activity", "target_auprc"),
    ("full_ood", "target_auroc"), ("combo", "edist"), ("combo", "edist_rel"),
    ("combo", "delta_pearson_top20"), ("unseen_ko", "edist"), ("unseen_ko", "mean_rmse"),
    ("unseen_ko", "delta_pearson_top50"), ("targets", "target_rank"), ("targets", "target_top1"),
    ("targets", "target_top2"), ("targets", "target_auroc"), ("graph", "graph_auprc"),
    ("train", "fit_seconds"), ("train", "fit_failed"),
)

#: (split, metric) shown per context (one row per held-out knockout or pair) by the report
PER_CONTEXT = (("unseen_ko", "edist"), ("unseen_ko", "delta_pearson_top50"),
               ("combo", "edist"))


def headline_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Methods × headline columns with "mean ± sd" strings (sd over seeds)."""
    cells = {}
    for _, r in summary.iterrows():
        key = (r["split"], r["metric"])
        if key in HEADLINE:
            cells.setdefault(r["method"], {})[f"{key[0]}:{key[1]}"] = (
                f"{r['mean']:.3f} ± {r['sd']:.3f}" if r["n_seeds"] > 1 else f"{r['mean']:.3f}")
    cols = [f"{s}:{m}" for s, m in HEADLINE if any(f"{s}:{m}" in v for v in cells.values())]
    return pd.DataFrame.from_dict(cells, orient="index").reindex(columns=cols).fillna("—")


def target_rank_table(results: pd.DataFrame) -> pd.DataFrame | None:
    """Perturbation × method: rank of the intended target, mean over seeds (None without
    ``target_rank`` rows, i.e. protocols without intended targets)."""
    ranks = results[results["metric"] == "target_rank"]
    if ranks.empty:
        return None
    table = ranks.pivot_table(index="context", columns="method", values="value", aggfunc="mean")
    return table.loc[table.mean(1).sort_values().index].round(2)


def context_table(results: pd.DataFrame, split: str, metric: str,
                  contexts: list[str] | None = None) -> pd.DataFrame | None:
    """Context × method: ``metric`` on ``split``, mean over seeds (None if absent); for the
    ``combo`` split of paper-synthetic (40 pairs) pass ``contexts`` to keep it short."""
    rows = results[(results["split"] == split) & (results["metric"] == metric)]
    if rows.empty:
        return None
    table = rows.pivot_table(index="context", columns="method", values="value", aggfunc="mean")
    return (table if contexts is None else table.loc[contexts]).round(3)


def markdown_table(table: pd.DataFrame) -> str:
    """A headline table as GitHub markdown (methods as rows)."""
    cols = ["method", *table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name, row in table.iterrows():
        lines.append("| " + " | ".join([str(name), *map(str, row)]) + " |")
    return "\n".join(lines)
