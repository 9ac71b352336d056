"""What every peer runner shares (imported by the runner scripts from their own folder; runs in
the peer's venv, so it needs only numpy, pandas and anndata, which every peer has).

``python <peer>.py fit WORKDIR`` / ``python <peer>.py predict WORKDIR REQUEST OUT`` — see
``causalpert.peers`` for the files."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def load_fit_inputs(workdir: Path):
    """(train AnnData, features DataFrame, config dict) of a work folder."""
    import anndata as ad
    import pandas as pd

    train = ad.read_h5ad(workdir / "train.h5ad")
    features = pd.read_csv(workdir / "features.csv", index_col=0)
    features.index = features.index.astype(str)
    config = json.loads((workdir / "config.json").read_text())
    return train, features, config


def load_request(path: str):
    """(names, doses, features [Q, p] or None, n_cells, seed) of a request file."""
    import numpy as np

    req = json.loads(Path(path).read_text())
    rows = req["perturbations"]
    feats = [r.get("features") for r in rows]
    F = np.asarray(feats, dtype=np.float64) if all(f is not None for f in feats) else None
    return ([r["name"] for r in rows], [float(r["dose"]) for r in rows], F,
            int(req["n_cells"]), int(req["seed"]))


def write_prediction(out: str, X, genes, names, doses, n_cells: int) -> None:
    """``n_cells`` rows per request in request order, written to a temp file then renamed."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    obs = pd.DataFrame({"perturbation": np.repeat(names, n_cells),
                        "dose": np.repeat(doses, n_cells)})
    obs.index = obs.index.astype(str)
    pred = ad.AnnData(X=np.asarray(X, dtype=np.float32), obs=obs,
                      var=pd.DataFrame(index=list(genes)))
    tmp = Path(out).with_name("." + Path(out).name + ".tmp")
    pred.write_h5ad(tmp)
    os.replace(tmp, out)


def main(fit, predict) -> None:
    """Dispatch ``fit WORKDIR`` / ``predict WORKDIR REQUEST OUT``; write ``<command>.json``
    with the seconds the peer's own work took (imports excluded)."""
    if len(sys.argv) < 3 or sys.argv[1] not in ("fit", "predict"):
        sys.exit("usage: runner.py fit WORKDIR | predict WORKDIR REQUEST OUT")
    command, workdir = sys.argv[1], Path(sys.argv[2])
    t0 = time.perf_counter()
    if command == "fit":
        fit(workdir)
    else:
        predict(workdir, *sys.argv[3:5])
    (workdir / f"{command}.json").write_text(json.dumps(
        {"seconds": time.perf_counter() - t0}))
