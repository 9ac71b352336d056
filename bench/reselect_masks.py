"""Why re-selection (``reselect_steps``) costs `full_ood` edist on paper-synthetic: the MAP
mask of a new drug, 1[σ(w |ê| + b) > 0.5], takes (w, b) from the training drugs' own effects
(``GIM.calibration_``); once the small spurious effects are gone its threshold |ê| = −b / w
rises above what the feature heads predict for the new drugs' true targets.

    OMP_NUM_THREADS=1 python bench/reselect_masks.py [--sim linear] [--seed 2]   # ≈ 5 min

Prints, for a default fit and one with ``reselect_steps=1000``: the mask threshold, the mean
|ê| the heads predict (dose 1) on the new drugs' true targets and on the other genes, the
share of the true targets above the threshold, the selected pairs per training drug and the
`full_ood` edist (mean over contexts); then the re-selected fit's `full_ood` edist with the
default fit's mask logistic swapped in, and each fit's network with the other's feature heads
(checks of the mechanism, not settings: they read the test split).
"""

from __future__ import annotations

import argparse

import numpy as np

import causalpert as cp
from causalpert.benchmark.evaluate import evaluate_prediction
from causalpert.benchmark.protocols import paper_synthetic


def full_ood_edist(model, pdata) -> float:
    rows = evaluate_prediction(model, pdata.tests["full_ood"], pdata.x_control,
                               split="full_ood", metrics=("edist",))
    return float(np.mean([r["value"] for r in rows]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", default="linear")
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()
    pdata = paper_synthetic(sim=args.sim, seed=args.seed)
    seen, unseen = pdata.target_sets["id"], pdata.target_sets["full_ood"]
    truth = pdata.truth_targets.loc[unseen].to_numpy().astype(bool)
    fits = {}
    for steps in (0, 1000):
        model = cp.GIM(causal=args.sim, seed=args.seed, reselect_steps=steps).fit(
            pdata.train, progress=False, **pdata.fit_kwargs)
        w, b = model.calibration_
        threshold = -b / w
        e = np.abs(model.effects(unseen, doses=1.0).drop(columns="dose").to_numpy())
        selected = (model.target_probabilities(seen).to_numpy() > 0.5).sum(1).mean()
        print(f"reselect_steps={steps}: mask threshold |ê| > {threshold:.2f}; new drugs' "
              f"predicted |ê| on true targets {e[truth].mean():.2f}, other genes "
              f"{e[~truth].mean():.2f}; true targets above the threshold "
              f"{(e[truth] > threshold).mean():.2f}; selected per training drug {selected:.2f}; "
              f"full_ood edist {full_ood_edist(model, pdata):.3f}; heads' leave-one-out MSE "
              + ", ".join(f"{k} {h.cv_mse:.3f}" for k, h in model.heads_.items()), flush=True)
        fits[steps] = model
    heads = {k: (m.heads_, m.calibration_) for k, m in fits.items()}
    fits[1000].calibration_ = fits[0].calibration_
    print(f"reselect_steps=1000 with the default fit's mask logistic: full_ood edist "
          f"{full_ood_edist(fits[1000], pdata):.3f}")
    # heads or network? each fit's network with the other fit's heads (and mask logistic)
    for net, other in ((1000, 0), (0, 1000)):
        fits[net].heads_, fits[net].calibration_ = heads[other]
        print(f"network of reselect_steps={net} with the heads of reselect_steps={other}: "
              f"full_ood edist {full_ood_edist(fits[net], pdata):.3f}")


if __name__ == "__main__":
    main()
