"""Diagnostic (not a library feature yet): rank Sachs targets by a KDS score test.

GIM's target probabilities order the genes it did *not* select (π ≈ 0.02) by noise. A score
test orders them by evidence instead: KDS is exactly quadratic in a constant drift shift δ on
gene j, KDS(δ) = K₀ + 2Bδ + Cδ², so adding j as a target with its best shift lowers a
context's KDS by R_j = B²/C (``core.kds_shift_gain``). Selected genes (π > 0.5) rank
first, the rest by R. Prints each reagent's ranking and the mean rank / top-2 count.

    OMP_NUM_THREADS=1 .venv/bin/python bench/sachs_score_test.py --seed 0
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import causalpert as cp
from causalpert.benchmark.protocols import sachs
from causalpert.core import kds_shift_gain


def score_test(model, cells: torch.Tensor, index: int) -> np.ndarray:
    """R_j [d] for one seen perturbation (index into ``model.seen_``) at dose 1
    (``core.kds_shift_gain``); +inf for the genes already selected."""
    z = ((cells - model.mu0_) / model.s0_)[None].double()
    with torch.no_grad():
        logits, u, _ = model.net(torch.tensor([index]), torch.ones(1))
        selected = (torch.sigmoid(logits) > 0.5).double()
        drift = model.drift.double()
        f0 = drift(z) + (selected * u.double())[:, None]
        s2 = torch.exp(2 * drift.log_sigma)[None]
    gain, _ = kds_shift_gain(z, f0, s2, bandwidth=model.bandwidth_)
    return np.where(selected[0].numpy() > 0, np.inf, gain[0].numpy())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cells", type=int, default=600, help="cells per reagent (subsample)")
    args = ap.parse_args()
    p = sachs(seed=args.seed)
    model = cp.GIM(seed=args.seed).fit(p.fit_all, progress=True, **p.fit_kwargs)
    genes = list(p.fit_all.var_names)
    g = torch.Generator().manual_seed(args.seed)
    ranks = {}
    for name, target in p.intended_targets.items():
        X = torch.tensor(np.asarray(p.fit_all[p.fit_all.obs["perturbation"] == name].X))
        X = X[torch.randperm(len(X), generator=g)[:args.cells]].float()
        R = score_test(model, X, model.seen_.index(name))
        pi = model.target_probabilities([name]).loc[name].to_numpy()
        order = np.lexsort((-pi, -R))  # R first (selected = inf), ties by π
        ranks[name] = int(np.nonzero(np.array(genes)[order] == target)[0][0]) + 1
        print(f"{name:18s} → {target:9s} rank {ranks[name]:2d}  top: "
              + ", ".join(f"{genes[o]} {R[o]:.4f}" for o in order[:5]))
    top2 = sum(r <= 2 for r in ranks.values())
    print(f"mean rank {np.mean(list(ranks.values())):.2f}, top-2 {top2} of {len(ranks)}")


if __name__ == "__main__":
    main()
