"""The field's metric packages (pertpy, cell-eval) on predictions causalpert wrote, for the
metrics cross-check (``bench/metrics_crosscheck.py``): ``score WORKDIR`` reads ``real.h5ad``
and ``pred.h5ad`` (obs ``perturbation``; the same control cells, labelled ``control``, in both)
and writes ``scores.csv``: per perturbation, pertpy's ``edistance`` (pred vs real cells),
cell-eval's ``pearson_delta`` and ``mse`` (pseudobulk means)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def score(workdir: Path) -> None:
    import anndata as ad
    import numpy as np
    import pandas as pd
    import pertpy as pt
    from cell_eval._types import PerturbationAnndataPair
    from cell_eval.metrics import mse, pearson_delta

    real, pred = ad.read_h5ad(workdir / "real.h5ad"), ad.read_h5ad(workdir / "pred.h5ad")
    pair = PerturbationAnndataPair(real=real, pred=pred, pert_col="perturbation",
                                   control_pert="control")
    pdelta, err = pearson_delta(pair), mse(pair)
    edistance = pt.tools.Distance(metric="edistance")
    rows = []
    for p in sorted(set(real.obs["perturbation"]) - {"control"}):
        x = np.asarray(pred[pred.obs["perturbation"] == p].X, dtype=np.float64)
        y = np.asarray(real[real.obs["perturbation"] == p].X, dtype=np.float64)
        rows.append({"perturbation": p, "pertpy_edistance": float(edistance(x, y)),
                     "celleval_pearson_delta": pdelta[p], "celleval_mse": err[p]})
    pd.DataFrame(rows).to_csv(workdir / "scores.csv", index=False)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "score":
        sys.exit("usage: run_metrics.py score WORKDIR")
    t0 = time.perf_counter()
    score(Path(sys.argv[2]))
    (Path(sys.argv[2]) / "score.json").write_text(json.dumps(
        {"seconds": time.perf_counter() - t0}))
