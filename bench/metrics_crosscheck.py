"""Metrics cross-check (issue 12): ``causalpert.metrics`` against pertpy and cell-eval on the
same predictions (needs ``causalpert peers install metrics``).

    python bench/metrics_crosscheck.py [--seed 0] [--contexts 20]

Predictions: the ``additive`` baseline fitted on paper-synthetic (linear truth, the seed), the
first ``--contexts`` contexts of the ``id`` split; the observed and predicted sets share the
training control cells. Where the definitions coincide the numbers must agree to float
precision; where they differ, the stated relation must hold exactly:

- pertpy ``edistance`` = the energy distance with self-pairs inside the within-set means
  (V-statistic); ours (``edist``) leaves them out (U-statistic), so
  pertpy = ours + mean_{a≠a'}‖x̂_a − x̂_a'‖ / n + mean_{b≠b'}‖x_b − x_b'‖ / m.
- cell-eval ``pearson_delta`` = our ``delta_pearson`` (both against the control mean).
- cell-eval ``mse`` (of the pseudobulk means) = our ``mean_rmse``².
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist

from causalpert import peers
from causalpert.benchmark.protocols import paper_synthetic
from causalpert.metrics import delta_pearson, edist, mean_rmse
from causalpert.models import MODELS


def _ours(x_pred: np.ndarray, x_obs: np.ndarray, mu0: np.ndarray) -> dict:
    n, m = len(x_pred), len(x_obs)
    e = edist(x_pred, x_obs)
    return {"edist": e, "edist_v": e + pdist(x_pred).mean() / n + pdist(x_obs).mean() / m,
            "delta_pearson": delta_pearson(x_pred, x_obs, mu_control=mu0),
            "mse": mean_rmse(x_pred, x_obs) ** 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contexts", type=int, default=20)
    args = parser.parse_args()
    data = paper_synthetic(sim="linear", seed=args.seed)
    model = MODELS["additive"](seed=args.seed).fit(data.train, progress=False,
                                                    **data.fit_kwargs)
    test = data.tests["id"]
    keys = list(dict.fromkeys(zip(test.obs["perturbation"], test.obs["dose"], strict=True)))
    keys = keys[:args.contexts]
    ctrl = data.x_control
    real_parts, pred_parts, ours = [], [], []
    for i, (p, c) in enumerate(keys):
        label = f"{p}@{c:g}"
        x_obs = np.asarray(test[(test.obs["perturbation"] == p).to_numpy()
                                & (test.obs["dose"] == c).to_numpy()].X, dtype=np.float64)
        x_pred = np.asarray(model.predict([p], c, n_cells=200, seed=i).X, dtype=np.float64)
        real_parts.append((label, x_obs))
        pred_parts.append((label, x_pred))
        ours.append({"perturbation": label, **_ours(x_pred, x_obs, ctrl.mean(0))})

    def adata(parts):
        X = np.concatenate([ctrl] + [x for _, x in parts]).astype(np.float64)
        labels = ["control"] * len(ctrl) + [lab for lab, x in parts for _ in range(len(x))]
        obs = pd.DataFrame({"perturbation": labels}, index=[f"c{j}" for j in range(len(X))])
        return ad.AnnData(X=X, obs=obs)

    with tempfile.TemporaryDirectory() as tmp:
        adata(real_parts).write_h5ad(Path(tmp) / "real.h5ad")
        adata(pred_parts).write_h5ad(Path(tmp) / "pred.h5ad")
        peers.run("metrics", "score", Path(tmp))
        theirs = pd.read_csv(Path(tmp) / "scores.csv")
    both = pd.DataFrame(ours).merge(theirs, on="perturbation")
    checks = [("pertpy edistance vs ours + self-pair terms", "pertpy_edistance", "edist_v"),
              ("cell-eval pearson_delta vs delta_pearson", "celleval_pearson_delta",
               "delta_pearson"),
              ("cell-eval mse vs mean_rmse²", "celleval_mse", "mse")]
    print(f"{len(both)} contexts (paper-synthetic linear, seed {args.seed}, additive, id)\n")
    print("| quantity | max abs difference | max relative difference | mean value |")
    print("|---|---|---|---|")
    for title, a, b in checks:
        diff = (both[a] - both[b]).abs()
        print(f"| {title} | {diff.max():.2e} | {(diff / both[b].abs()).max():.2e} | "
              f"{both[a].mean():.4f} |")
    gap = (both["pertpy_edistance"] - both["edist"]) / both["edist"].abs()
    print(f"\npertpy's edistance exceeds our edist by {gap.median():.1%} (median over "
          "contexts): the self-pairs (zeros) it averages into the within-set terms.")


if __name__ == "__main__":
    main()
