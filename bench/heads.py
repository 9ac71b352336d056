"""Feature heads on paper-synthetic (issue 13): the CV-chosen head (ridge or RBF kernel ridge,
``FitConfig.feature_head="cv"``) against the ridge head on the same fit, and whether the
head's predictive sd ranks the worse-predicted unseen drugs higher.

    OMP_NUM_THREADS=1 python bench/heads.py --out runs/heads.json [--seeds 0,1,2]

For each truth (linear, MLP) and seed: one default ``cp.GIM(causal=truth)`` fit on the
training cells (its heads chosen by leave-one-perturbation-out CV on the 40 training drugs),
scored on ``full_ood`` (20 unseen drugs × 4 doses, edist per context); then the heads are
refitted as ridge on the same latent interventions and scored again — a paired comparison
(nothing but the heads differs). Spearman ρ between each unseen drug's
``head_uncertainty()["effect_sd"]`` and its mean edist over doses (> 0: the model knows which
drugs it predicts worse). Writes JSON rows and prints means over seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

import causalpert as cp
from causalpert.benchmark.evaluate import evaluate_prediction
from causalpert.benchmark.protocols import paper_synthetic


def _full_ood(model, pdata) -> dict[str, float]:
    """Mean edist over doses per unseen drug."""
    rows = evaluate_prediction(model, pdata.tests["full_ood"], pdata.x_control,
                               split="full_ood", metrics=("edist",))
    per: dict[str, list[float]] = {}
    for r in rows:
        per.setdefault(r["context"].rsplit("@", 1)[0], []).append(r["value"])
    return {k: float(np.mean(v)) for k, v in per.items()}


def _refit_heads(model, kind: str) -> None:
    """The heads of ``kind`` on the model's own latent interventions (GIM._fit_heads)."""
    F = torch.as_tensor(model.feature_table_.loc[model.seen_].to_numpy(), dtype=torch.float32)
    model.config = dataclasses.replace(model.config, feature_head=kind)
    model._fit_heads((F - model.f_mean_) / model.f_sd_, torch.arange(len(model.seen_)))


def one(truth: str, seed: int) -> dict:
    pdata = paper_synthetic(sim=truth, seed=seed)
    model = cp.GIM(causal=truth, seed=seed).fit(pdata.train, progress=False,
                                               **pdata.fit_kwargs)
    chosen = {k: h.kind for k, h in model.heads_.items()}
    cv = _full_ood(model, pdata)
    drugs = sorted(cv)
    sd = model.head_uncertainty(drugs)["effect_sd"]
    rho = float(spearmanr(sd.loc[drugs], [cv[d] for d in drugs]).statistic)
    _refit_heads(model, "ridge")
    ridge = _full_ood(model, pdata)
    return {"truth": truth, "seed": seed, "heads": chosen,
            "full_ood_edist_cv": float(np.mean(list(cv.values()))),
            "full_ood_edist_ridge": float(np.mean(list(ridge.values()))),
            "spearman_sd_vs_edist": rho, "per_drug_cv": cv, "per_drug_ridge": ridge,
            "effect_sd": sd.to_dict()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--truths", default="linear,mlp")
    args = ap.parse_args()
    done = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    for truth in args.truths.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            if any(r["truth"] == truth and r["seed"] == seed for r in done):
                continue  # resume
            print(f"[heads] {truth} seed {seed}", flush=True)
            done.append(one(truth, seed))
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(json.dumps({"rows": done}, indent=1))
            os.replace(tmp, args.out)
    for truth in sorted({r["truth"] for r in done}):
        mine = [r for r in done if r["truth"] == truth]
        summary = {k: (round(float(np.mean([r[k] for r in mine])), 4),
                       round(float(np.std([r[k] for r in mine])), 4))
                   for k in ("full_ood_edist_cv", "full_ood_edist_ridge",
                             "spearman_sd_vs_edist")}
        print(truth, json.dumps(summary), [r["heads"]["effect"] for r in mine])


if __name__ == "__main__":
    main()
