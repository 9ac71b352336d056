"""One re-selected GIM fit (``reselect_steps=1000``) on paper-synthetic, diagnosed. Since
session 14 re-selection keeps the drugs' EC50 and Hill at the first refit's values (session
13's lead, a subclass here that froze them, is now the library's behaviour, bitwise the same);
with them free, the EC50/Hill heads' leave-one-out errors grew and new drugs' predictions got
worse (``bench/reselect_masks.py``).

    OMP_NUM_THREADS=1 python bench/reselect_one_fit.py --sim linear --seed 0   # ≈ 3 min

Prints the `full_ood` edist, the heads' leave-one-out errors, the target ECE of the seen and
the new drugs and the graph AUPRC of the fit.
"""

from __future__ import annotations

import argparse

import numpy as np

import causalpert as cp
from causalpert.benchmark.protocols import paper_synthetic
from causalpert.metrics import expected_calibration_error, graph_auprc
from reselect_masks import full_ood_edist


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", default="linear")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    pdata = paper_synthetic(sim=args.sim, seed=args.seed)
    model = cp.GIM(causal=args.sim, seed=args.seed, reselect_steps=1000).fit(
        pdata.train, progress=False, **pdata.fit_kwargs)
    truth = pdata.truth_targets
    ece = {split: expected_calibration_error(
        model.target_probabilities(pdata.target_sets[split]).to_numpy().ravel(),
        truth.loc[pdata.target_sets[split]].to_numpy().ravel().astype(bool))
        for split in ("id", "full_ood")}
    auprc = graph_auprc(np.abs(np.asarray(model.graph())), np.asarray(pdata.true_graph))
    print(f"{args.sim} seed {args.seed}, re-selected: full_ood edist "
          f"{full_ood_edist(model, pdata):.3f}; heads' leave-one-out MSE "
          + ", ".join(f"{k} {h.cv_mse:.3f}" for k, h in model.heads_.items())
          + f"; target ECE seen {ece['id']:.3f}, new {ece['full_ood']:.3f}; graph AUPRC "
          f"{auprc:.3f}")


if __name__ == "__main__":
    main()
