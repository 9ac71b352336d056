"""Fake peer for tests: control cells + the mean shift of the nearest training perturbation in
feature space, scaled by dose / its nearest training dose. ``options.fail`` = "fit" or
"predict" makes that command fail the way a broken peer would (exit 1, message last)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _protocol import load_fit_inputs, load_request, main, write_prediction


def fit(workdir: Path) -> None:
    import numpy as np

    train, features, config = load_fit_inputs(workdir)
    if config["options"].get("fail") == "fit":
        sys.exit("fake peer: asked to fail in fit")
    X = np.asarray(train.X, dtype=np.float64)
    pert = train.obs["perturbation"].astype(str).to_numpy()
    dose = train.obs["dose"].to_numpy(dtype=np.float64)
    is_ctrl = pert == config["control"]
    mu0 = X[is_ctrl].mean(0)
    keys = sorted({(p, d) for p, d in zip(pert[~is_ctrl], dose[~is_ctrl], strict=True)})
    shifts = np.stack([X[(pert == p) & (dose == d)].mean(0) - mu0 for p, d in keys])
    np.savez(workdir / "fake_model.npz", control=X[is_ctrl], shifts=shifts,
             F=features.loc[[p for p, _ in keys]].to_numpy(dtype=np.float64),
             doses=np.array([d for _, d in keys]))
    (workdir / "fake_genes.json").write_text(json.dumps(list(map(str, train.var_names))))


def predict(workdir: Path, request: str, out: str) -> None:
    import numpy as np

    config = json.loads((workdir / "config.json").read_text())
    if config["options"].get("fail") == "predict":
        sys.exit("fake peer: asked to fail in predict")
    m = np.load(workdir / "fake_model.npz")
    genes = json.loads((workdir / "fake_genes.json").read_text())
    names, doses, F, n_cells, seed = load_request(request)
    rng = np.random.default_rng(seed)
    X = []
    for f, c in zip(F, doses, strict=True):
        dist = ((m["F"] - f) ** 2).sum(1) + 1e-6 * (m["doses"] - c) ** 2
        k = int(np.argmin(dist))
        cells = m["control"][rng.integers(0, len(m["control"]), n_cells)]
        X.append(cells + m["shifts"][k] * c / max(m["doses"][k], 1e-12))
    write_prediction(out, np.concatenate(X), genes, names, doses, n_cells)


if __name__ == "__main__":
    main(fit, predict)
