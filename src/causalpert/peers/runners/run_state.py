"""STATE peer (Arc Institute's state-transition transformer, arc-state 0.11.1; torch), driven
through its own CLI (``python -m state tx train`` / ``tx infer``).

STATE has no dose input, so each (perturbation, dose) is its own perturbation label
``"name@dose"`` whose vector is ``[that perturbation's features..., dose]`` (STATE's
``perturbation_features_file``; the control's vector is all zeros). Unseen labels are added to
the run's ``pert_onehot_map.pt`` at predict time (``tx infer`` would silently give an unknown
label the control's vector; the runner fails if infer reports any such fallback).

STATE ends its forward pass with a ReLU (it models non-negative log-expression), and
``tx infer`` clips gene-space outputs to [0, 14]; our genes are signed. So the model runs in
STATE's "embedding" output space on ``obsm["X_causalpert"]`` (no clipping, no gene decoder), with
each gene mapped to ``(x - lo) / s``: ``s`` its standard deviation over the training cells, ``lo``
its smallest training value minus one ``s`` (so every training value is ≥ 1 and a prediction
can reach one sd below the smallest observed value, not lower); predictions are mapped back.

Setting (not tuned on any test split): ``model=state_sm`` (4 bidirectional llama layers, energy
loss, residual prediction) narrowed to width 128 (2 heads of 64, MLP 512; state_sm's is 672) and
trained with plain Adam at lr 1e-3 (STATE's is 1e-4) — on 2 shared CPU cores the full width ran
~4 s per step, and at 1e-4 a 150-step width-128 fit had only learned the global mean (every
prediction the same, 16.5 from the control mean); ``steps`` default 1,000 (~5 min here, the
budget CellFlow gets; 300 steps, 100 s, predicted the paper-synthetic ``id`` split worse than
the control cells). ``cell_set_len`` 64 (state_sm's 128): a (perturbation, dose)
group has ~50 cells in our data and STATE pads a short set by resampling it with replacement;
``batch_size`` 8 sets (STATE's 16). Grad clip 10 as STATE's. One cell type, one batch; every
training cell is in the training split (no zero-/few-shot hold-out, no validation split:
cell_load needs none); one checkpoint, at the end. ``options`` may set ``width`` and ``lr``.
Prediction: ``tx infer`` draws a basal control cell (with replacement, ``--seed``) from the
training control cells for each of the ``n_cells`` cells of a request row and predicts them in
sets of ≤ ``cell_set_len``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _protocol import load_fit_inputs, load_request, main, write_prediction

KEY = "X_causalpert"  # obsm key STATE reads and writes (its "embedding")
PERT, CELL_TYPE, BATCH = "causalpert_label", "causalpert_cell_type", "causalpert_batch"
RUN = "state_run"  # STATE's run directory inside WORKDIR
SET_LEN, BATCH_SIZE, DEFAULT_STEPS, WIDTH, LR = 64, 8, 1000, 128, 1e-3


def _label(name: str, dose: float) -> str:
    return f"{name}@{float(dose):.6g}"


def _quote(value) -> str:
    """A Hydra override value, quoted so that paths and labels with odd characters pass."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _state(args: list[str], what: str, capture: bool = False) -> str:
    """Run STATE's CLI in this interpreter's venv; exit with one clear line if it fails."""
    env = {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1"}
    done = subprocess.run([sys.executable, "-m", "state", "tx", *args], env=env, text=True,
                          capture_output=capture)
    out = (done.stdout or "") + (done.stderr or "")
    if capture:
        print(out, flush=True)  # into the caller's log
    if done.returncode != 0:
        sys.exit(f"state peer: `state tx {what}` failed (exit {done.returncode}); see the "
                 "output above")
    return out


def fit(workdir: Path) -> None:
    import anndata as ad
    import numpy as np
    import pandas as pd
    import torch

    train, features, config = load_fit_inputs(workdir)
    control = str(config["control"])
    X = np.asarray(train.X, dtype=np.float64)
    s = X.std(0) + 1e-6
    lo = X.min(0) - s
    Z = ((X - lo) / s).astype(np.float32)

    pert = train.obs["perturbation"].astype(str).to_numpy()
    dose = train.obs["dose"].to_numpy(dtype=np.float64)
    labels = [control if p == control else _label(str(p), d)  # plain str: torch.load
              for p, d in zip(pert, dose, strict=True)]  # (weights_only) rejects numpy str
    missing = sorted(set(pert) - set(features.index) - {control})
    if missing:
        sys.exit(f"state peer: no features for training perturbations {missing[:5]}")
    vectors = {control: torch.zeros(features.shape[1] + 1)}
    for lab, p, d in zip(labels, pert, dose, strict=True):
        if lab not in vectors:
            vectors[lab] = torch.tensor([*features.loc[p].to_numpy(np.float64), float(d)],
                                        dtype=torch.float32)
    torch.save(vectors, workdir / "state_pert_features.pt")

    obs = pd.DataFrame({PERT: pd.Categorical(labels), CELL_TYPE: pd.Categorical(["cells"] * len(Z)),
                        BATCH: pd.Categorical(["0"] * len(Z))},
                       index=[f"cell{i}" for i in range(len(Z))])
    adata = ad.AnnData(X=Z, obs=obs, var=pd.DataFrame(index=list(map(str, train.var_names))))
    adata.obsm[KEY] = Z
    adata.write_h5ad(workdir / "state_train.h5ad")
    (workdir / "state_data.toml").write_text(
        f'[datasets]\ncausalpert = "{workdir.resolve() / "state_train.h5ad"}"\n\n'
        '[training]\ncausalpert = "train"\n')

    steps = int(config["steps"] or DEFAULT_STEPS)
    options = config.get("options") or {}
    width, lr = int(options.get("width", WIDTH)), float(options.get("lr", LR))
    kw, bb = "data.kwargs.", "model.kwargs.transformer_backbone_kwargs."
    root = workdir.resolve()
    _state(["train",
            f"{kw}toml_config_path={_quote(root / 'state_data.toml')}",
            f"{kw}perturbation_features_file={_quote(root / 'state_pert_features.pt')}",
            f"{kw}embed_key={KEY}", f"{kw}output_space=embedding",
            f"{kw}pert_col={PERT}", f"{kw}cell_type_key={CELL_TYPE}", f"{kw}batch_col={BATCH}",
            f"{kw}control_pert={_quote(control)}", f"{kw}basal_mapping_strategy=random",
            f"{kw}num_workers=0", f"{kw}pin_memory=false",
            "model=state_sm", "model.device=cpu", f"model.kwargs.cell_set_len={SET_LEN}",
            # state_sm's shape (4 llama layers, heads of 64, MLP 4x) at width `width`
            f"model.kwargs.hidden_dim={width}", f"{bb}intermediate_size={4 * width}",
            f"{bb}num_attention_heads={width // 64}", f"{bb}num_key_value_heads={width // 64}",
            f"{bb}head_dim=64",
            f"training.max_steps={steps}", f"training.train_seed={int(config['seed'])}",
            f"training.batch_size={BATCH_SIZE}", f"training.lr={lr}",
            # the only checkpoint is final.ckpt, written after training (no val split)
            f"training.val_freq={steps + 1}", f"training.ckpt_every_n_steps={steps + 1}",
            "training.wandb_track=false", "use_wandb=false",
            f"output_dir={_quote(root)}", f"name={RUN}", "overwrite=true"],
           "train")
    run = workdir / RUN
    if not (run / "checkpoints" / "final.ckpt").exists():
        sys.exit(f"state peer: `state tx train` wrote no checkpoint in {run / 'checkpoints'}")
    (run / "checkpoints" / "last.ckpt").unlink(missing_ok=True)  # a copy of final.ckpt
    # keep the trained label map; each predict writes pert_onehot_map.pt = trained + request
    os.replace(run / "pert_onehot_map.pt", workdir / "state_pert_map_trained.pt")
    (workdir / "state_meta.json").write_text(json.dumps(
        {"genes": list(map(str, train.var_names)), "control": control, "lo": lo.tolist(),
         "s": s.tolist(), "steps": steps, "width": width, "lr": lr,
         "n_features": int(features.shape[1])}))


def predict(workdir: Path, request: str, out: str) -> None:
    import anndata as ad
    import numpy as np
    import pandas as pd
    import torch

    meta = json.loads((workdir / "state_meta.json").read_text())
    control = meta["control"]
    names, doses, F, n_cells, seed = load_request(request)
    features = pd.read_csv(workdir / "features.csv", index_col=0)
    features.index = features.index.astype(str)

    vectors = torch.load(workdir / "state_pert_map_trained.pt", weights_only=False)
    labels = []
    for i, (name, dose) in enumerate(zip(names, doses, strict=True)):
        if F is not None:
            f = np.asarray(F[i], dtype=np.float64)
        elif name in features.index:
            f = features.loc[name].to_numpy(np.float64)
        elif name == control:
            f = np.zeros(meta["n_features"])
        else:
            sys.exit(f"state peer: no features for perturbation {name!r}")
        if len(f) != meta["n_features"]:
            sys.exit(f"state peer: {name!r} has {len(f)} features, the fit had "
                     f"{meta['n_features']}")
        vec = torch.tensor([*f, dose], dtype=torch.float32)
        lab = _label(name, dose)
        if lab in labels and not torch.equal(vectors[lab], vec):
            lab = f"{lab}#{i}"  # same name and dose asked twice with different features
        vectors[lab] = vec  # the request's vector wins over a trained label's
        labels.append(lab)
    run = workdir / RUN
    tmp = run / ".pert_onehot_map.pt.tmp"
    torch.save(vectors, tmp)
    os.replace(tmp, run / "pert_onehot_map.pt")

    # infer input: the training control cells (the pool basal cells are drawn from) and
    # n_cells placeholder rows per request row, known to infer only by their label
    train = ad.read_h5ad(workdir / "state_train.h5ad")
    ctrl = train[train.obs[PERT].astype(str).to_numpy() == control]
    Zc = np.asarray(ctrl.obsm[KEY], dtype=np.float32)
    n_req = len(labels) * n_cells
    Z = np.concatenate([Zc, np.repeat(Zc[:1], n_req, axis=0)])
    obs = pd.DataFrame({PERT: [control] * len(Zc) + list(np.repeat(labels, n_cells)),
                        CELL_TYPE: "cells", BATCH: "0"},
                       index=[f"c{i}" for i in range(len(Z))])
    adata = ad.AnnData(X=Z, obs=obs, var=train.var.copy())
    adata.obsm[KEY] = Z
    src, dst = workdir / "state_infer_in.h5ad", workdir / "state_infer_out.h5ad"
    adata.write_h5ad(src)
    log = _state(["infer", "--model-dir", str(run), "--adata", str(src), "--embed-key", KEY,
                  "--pert-col", PERT, "--control-pert", control, "--output", str(dst),
                  "--seed", str(seed)], "infer", capture=True)
    if "not in mapping" in log:
        sys.exit("state peer: `state tx infer` fell back to the control vector for a label")
    pred = ad.read_h5ad(dst)
    Zp = np.asarray(pred.obsm[KEY], dtype=np.float64)[len(Zc):]
    X = Zp * np.asarray(meta["s"]) + np.asarray(meta["lo"])
    write_prediction(out, X, meta["genes"], names, doses, n_cells)
    for f in (src, dst):
        f.unlink()


if __name__ == "__main__":
    main(fit, predict)
