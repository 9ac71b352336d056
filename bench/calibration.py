"""Calibration of GIM ensembles on paper-synthetic (issue 13): target probabilities of seen
and unseen perturbations, and edge probabilities, against the known truth.

    OMP_NUM_THREADS=1 python bench/calibration.py --out runs/calibration [--k 5] [--workers 2]

For each truth (linear, MLP) and seed (0, 1, 2): ``cp.Ensemble(cp.GIM(causal=truth), n=K)``
fitted on the training cells (bootstrap within contexts). Scored with
``metrics.expected_calibration_error`` (10 equal-width bins):

- targets, seen: the mean π over members for the 40 training perturbations (truth: their
  simulated targets); the same for one member alone (a single GIM);
- targets, unseen: π of the 20 ``full_ood`` perturbations, predicted from features;
- edges: ``edge_probability`` (share of members with |w| > 0.1 · its max |w|), off-diagonal.

Unseen perturbations' π come from the π calibration GIM fits on its heads' held-out
(leave-one-perturbation-out) effects (``models.heads.held_out_predictions``; session 9).
Temperature scaling (σ(logit p / T)), never fitted on what it is scored on: T_targets is fitted
on the seen perturbations of the same fit and applied to the unseen ones (in practice: the
perturbations whose targets are known, e.g. knockouts); T_edges is fitted on the other two
seeds' edges of the same truth (leave one problem out) and applied to this seed's. Writes
``calibration.json`` (per truth × seed ECEs, T, and reliability curves) and
``reliability.png`` (pooled over seeds) and ``report/index.html`` (both) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import causalpert as cp
from causalpert._io import atomic_path, atomic_write
from causalpert.benchmark.html_report import Section, write_report
from causalpert.benchmark.protocols import paper_synthetic
from causalpert.metrics import apply_temperature, expected_calibration_error, fit_temperature


def one_fit(truth: str, seed: int, k: int, workers: int, steps: int | None,
            reselect: int = 0) -> dict:
    pdata = paper_synthetic(sim=truth, seed=seed)
    opts = {} if steps is None else {"steps": steps, "refit_steps": steps // 3}
    if reselect:
        opts["reselect_steps"] = reselect
    ens = cp.Ensemble(cp.GIM(causal=truth, seed=seed, **opts), n=k, workers=workers)
    t0 = time.perf_counter()
    ens.fit(pdata.train, progress=False, **pdata.fit_kwargs)
    fit_s = time.perf_counter() - t0
    seen, unseen = pdata.target_sets["id"], pdata.target_sets["full_ood"]
    T = pdata.truth_targets
    off = ~np.eye(len(pdata.true_graph), dtype=bool)
    return {
        "truth": truth, "seed": seed, "fit_s": fit_s,
        "seen_p": ens.target_probabilities(seen).to_numpy().ravel().tolist(),
        "seen_y": T.loc[seen].to_numpy().ravel().astype(bool).tolist(),
        "single_p": ens.members_[0].target_probabilities(seen).to_numpy().ravel().tolist(),
        "unseen_p": ens.target_probabilities(unseen).to_numpy().ravel().tolist(),
        "unseen_y": T.loc[unseen].to_numpy().ravel().astype(bool).tolist(),
        "edge_p": ens.edge_probability().to_numpy()[off].tolist(),
        "edge_y": pdata.true_graph[off].tolist(),
    }


def _pooled(fits: list[dict], key: str) -> list:
    return [v for f in fits for v in f[key]]


def score(fits: list[dict]) -> list[dict]:
    ece = expected_calibration_error
    rows = []
    for f in fits:
        others = [g for g in fits if g["truth"] == f["truth"] and g["seed"] != f["seed"]]
        t_targets = fit_temperature(f["seen_p"], f["seen_y"])
        t_edges = (fit_temperature(_pooled(others, "edge_p"), _pooled(others, "edge_y"))
                   if others else 1.0)
        rows.append({
            "truth": f["truth"], "seed": f["seed"], "fit_s": f["fit_s"],
            "targets_seen_ece": ece(f["seen_p"], f["seen_y"]),
            "targets_seen_single_ece": ece(f["single_p"], f["seen_y"]),
            "targets_unseen_ece": ece(f["unseen_p"], f["unseen_y"]),
            "T_targets": t_targets,
            "targets_unseen_ece_T": ece(apply_temperature(f["unseen_p"], t_targets),
                                        f["unseen_y"]),
            "edges_ece": ece(f["edge_p"], f["edge_y"]),
            "T_edges": t_edges,
            "edges_ece_T": ece(apply_temperature(f["edge_p"], t_edges), f["edge_y"]),
        })
    return rows


def figure(fits: list[dict], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truths = sorted({f["truth"] for f in fits})
    panels = [("seen", "targets, seen"), ("unseen", "targets, unseen"), ("edge", "edges")]
    fig, axes = plt.subplots(len(truths), 3, figsize=(11, 3.7 * len(truths)), squeeze=False)
    for r, truth in enumerate(truths):
        mine = [f for f in fits if f["truth"] == truth]
        for c, (key, title) in enumerate(panels):
            p, y = _pooled(mine, f"{key}_p"), _pooled(mine, f"{key}_y")
            cp.pl.reliability(p, y, label="ensemble", ax=axes[r, c])
            if key == "seen":
                cp.pl.reliability(_pooled(mine, "single_p"), y,
                                  label="one member", ax=axes[r, c])
            axes[r, c].set_title(f"{truth} truth: {title}", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--truths", default="linear,mlp")
    ap.add_argument("--steps", type=int, default=None,
                    help="cap stage-1 steps (refit: a third); default: GIM's defaults")
    ap.add_argument("--reselect", type=int, default=0,
                    help="GIM's reselect_steps (session 13: 1000; default 0, off)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fits = []
    for truth in args.truths.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            cache = args.out / f"fit-{truth}-{seed}.json"  # resume: finished fits are kept
            if cache.exists():
                fits.append(json.loads(cache.read_text()))
                continue
            print(f"[calibration] {truth} seed {seed}: K = {args.k} ensemble", flush=True)
            f = one_fit(truth, seed, args.k, args.workers, args.steps, args.reselect)
            with atomic_write(cache) as fh:
                fh.write(json.dumps(f))
            fits.append(f)
    rows = score(fits)
    summary = {}
    for truth in sorted({r["truth"] for r in rows}):
        mine = [r for r in rows if r["truth"] == truth]
        summary[truth] = {k: [float(np.mean([r[k] for r in mine])),
                              float(np.std([r[k] for r in mine]))]
                          for k in mine[0] if k not in ("truth", "seed")}
    out = {"k": args.k, "rows": rows, "summary_mean_sd": summary}
    with atomic_write(args.out / "calibration.json") as fh:
        fh.write(json.dumps(out, indent=1))
    fig = figure(fits, args.out / "reliability.png")
    table = pd.DataFrame(rows).set_index(["truth", "seed"]).round(3).reset_index()
    write_report(args.out / "report", title="causalpert: calibration on paper-synthetic",
                 command=" ".join(["python bench/calibration.py", *sys.argv[1:]]),
                 sections=[Section("reliability diagrams", figure=fig, caption=(
                     "Observed frequency of true targets / edges against the predicted "
                     "probability, 10 equal-width bins pooled over seeds; the diagonal is "
                     "perfect calibration.")),
                     Section("expected calibration error per truth and seed", table=table)])
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
