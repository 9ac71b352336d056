"""Papalexi 2021 ``targets`` split, one fit: the rank of each measured knocked-out gene among
the 162 modelled genes (opaque labels, no intended targets), and its top 4 genes.

    OMP_NUM_THREADS=1 python bench/papalexi_targets.py --method gim-activity --seed 0   # minutes
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from causalpert.benchmark.protocols import load_protocol
from causalpert.benchmark.runner import METHODS, make_model
from causalpert.metrics.targets import target_rank


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", default="gim", choices=[m for m in METHODS
                                                        if m.startswith("gim")])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    pdata = load_protocol("papalexi2021", seed=args.seed)
    model = make_model(args.method, seed=args.seed)
    t0 = time.perf_counter()
    model.fit(pdata.fit_all, progress=False, **pdata.fit_all_kwargs)
    secs = time.perf_counter() - t0
    perts = pdata.target_sets["targets"]
    scores = np.asarray(model.target_scores(perts))
    genes = list(model.genes_)
    ranks = []
    for i, p in enumerate(perts):
        gene = pdata.intended_targets[p]
        ranks.append(target_rank(scores[i], genes.index(gene)))
        top = [genes[j] for j in np.argsort(-scores[i])[:4]]
        print(f"{gene:9s} rank {ranks[-1]:5.1f}  top {top}")
    print(f"{args.method} seed {args.seed}: first for {sum(r == 1 for r in ranks)} of "
          f"{len(ranks)}, mean rank {np.mean(ranks):.2f}, fit {secs:.0f} s")


if __name__ == "__main__":
    main()
