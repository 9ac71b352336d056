"""How well |expected effect| separates true from spurious targets among the pairs GIM
selects (π > 0.5) for training perturbations — the label-free handle for calibrating seen
drugs' π (issue 13): one default GIM fit on paper-synthetic, the share of selected pairs that
are true targets and the AUROC of |effect| among them.

    OMP_NUM_THREADS=1 python bench/seen_targets.py [--sim linear] [--seed 0]     # ≈ 2 min
"""

from __future__ import annotations

import argparse

import numpy as np

import causalpert as cp
from causalpert.benchmark.protocols import paper_synthetic
from causalpert.metrics import target_auroc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", default="linear")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    pdata = paper_synthetic(sim=args.sim, seed=args.seed)
    model = cp.GIM(causal=args.sim, seed=args.seed).fit(pdata.train, progress=False,
                                                        **pdata.fit_kwargs)
    seen = pdata.target_sets["id"]
    pi = model.target_probabilities(seen).to_numpy()
    truth = pdata.truth_targets.loc[seen].to_numpy().astype(bool)
    effect = np.abs(model.effects(seen).drop(columns="dose").to_numpy())
    sel = pi > 0.5
    print(f"selected pairs {int(sel.sum())}, true share {truth[sel].mean():.3f}, AUROC of "
          f"|effect| among them {target_auroc(effect[sel], truth[sel]):.3f}")
    # where the spurious ones sit: next to a true target of the same perturbation?
    adj = np.asarray(pdata.true_graph).astype(bool)  # adj[i, j]: edge i → j
    false = np.argwhere(sel & ~truth)
    child = sum(bool(adj[truth[p], j].any()) for p, j in false)
    parent = sum(bool(adj[j, truth[p]].any()) for p, j in false)
    print(f"false selected {len(false)}: child of a true target {child}, parent of one "
          f"{parent}; median |effect| true {np.median(effect[sel & truth]):.2f}, false "
          f"{np.median(effect[sel & ~truth]):.2f}; median π false "
          f"{np.median(pi[sel & ~truth]):.4f}")


if __name__ == "__main__":
    main()
