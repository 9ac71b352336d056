"""Baselines (control, additive, mlp, de) on paper-synthetic: real numbers that can fail."""

import numpy as np
import pandas as pd
import pytest
import torch

import causalpert.models.baselines  # noqa: F401  (registers the baselines)
from causalpert.benchmark.evaluate import iter_contexts
from causalpert.data import SyntheticDesign, simulate
from causalpert.metrics import edist, edist_rel, target_auroc
from causalpert.models import MODELS, CheckpointError, PerturbationModel
from causalpert.models.baselines.mlp import energy_distance
from causalpert.models.ridge import ridge_path

TRAIN_PERTS = [f"pert_{i:02d}" for i in range(40)]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The fits are many tiny ops: extra threads only add contention on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def no_progress(monkeypatch):
    monkeypatch.setenv("CAUSALPERT_PROGRESS", "0")


@pytest.fixture(scope="module")
def data():
    adata = simulate("paper-synthetic", sim="linear", seed=0)
    train = adata[adata.obs["split"] == "train"]
    x_control = np.asarray(train[train.obs["perturbation"] == "control"].X)
    return adata, train, x_control


@pytest.fixture(scope="module")
def fitted(data):
    _, train, _ = data
    opts = {"control": {}, "additive": {}, "mlp": {"steps": 400}, "de": {}}
    return {name: MODELS[name](seed=0, **o).fit(train, progress=False)
            for name, o in opts.items()}


@pytest.fixture(scope="module")
def split_scores(fitted, data):
    """(name, split) → (mean edist, mean edist_rel) over the contexts of the split (cached)."""
    adata, _, x_control = data
    cache = {}

    def score(name, split, n_cells=200):
        if (name, split) not in cache:
            ctx = list(iter_contexts(adata[adata.obs["split"] == split]))
            pred = fitted[name].predict([c[0] for c in ctx], [c[1] for c in ctx], n_cells=n_cells)
            xp = pred.X.reshape(len(ctx), n_cells, -1)
            ed = [edist(xp[i], c[2]) for i, c in enumerate(ctx)]
            rel = [edist_rel(xp[i], c[2], x_control=x_control) for i, c in enumerate(ctx)]
            cache[name, split] = float(np.mean(ed)), float(np.nanmean(rel))
        return cache[name, split]

    return score


def test_registered():
    for name in ("control", "additive", "mlp", "de"):
        assert MODELS[name].name == name


def test_control_predicts_control_cells(fitted, data):
    _, _, x_control = data
    pred = fitted["control"].predict(["pert_00", "pert_50"], [0.5, 2.0], n_cells=4000)
    X = pred.X.reshape(2, 4000, -1)
    tol = 5 * x_control.std(0) / np.sqrt(4000)
    for i in range(2):
        assert np.all(np.abs(X[i].mean(0) - x_control.mean(0)) < tol)
    # every predicted cell is a control cell
    assert np.isin(X[0][:, 0], x_control[:, 0]).all()


def test_ridge_path_matches_direct_solve():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(30, 5)), rng.normal(size=(30, 3))
    coef, icpt = ridge_path(X, Y, [0.1, 10.0])
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    for a, alpha in enumerate([0.1, 10.0]):
        beta = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(5), Xc.T @ Yc)
        np.testing.assert_allclose(coef[a], beta, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(icpt[a], Y.mean(0) - X.mean(0) @ beta, atol=1e-10)


def test_additive_beats_control_in_distribution(fitted, split_scores):
    ed_add, rel_add = split_scores("additive", "id")
    ed_ctl, _ = split_scores("control", "id")
    assert rel_add < 0.5, rel_add
    assert ed_add < 0.5 * ed_ctl, (ed_add, ed_ctl)
    assert fitted["additive"].alpha_ in fitted["additive"].options["alphas"]
    assert len(fitted["additive"].cv_error_) == 13


@pytest.mark.parametrize("split", ["id", "partial_ood"])
def test_mlp_beats_control(fitted, split_scores, split):
    ed_mlp, rel_mlp = split_scores("mlp", split)
    ed_ctl, _ = split_scores("control", split)
    assert ed_mlp < 0.2 * ed_ctl, (ed_mlp, ed_ctl)
    if split == "id":
        assert rel_mlp < 0.3, rel_mlp
    loss = fitted["mlp"].history_.terms["loss"]
    assert loss[-1] < 0.2 * loss[0]


def test_energy_distance_matches_metric():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 30, 4, generator=g, dtype=torch.float64), torch.randn(
        2, 40, 4, generator=g, dtype=torch.float64) + 0.5
    ours = energy_distance(a, b, eps=1e-12)
    for i in range(2):
        assert ours[i].item() == pytest.approx(edist(a[i].numpy(), b[i].numpy()), abs=1e-5)


def truth_auroc(model, adata, perts=TRAIN_PERTS):
    scores = model.target_probabilities(perts)
    labels = adata.uns["truth"]["targets"].loc[scores.index, scores.columns].to_numpy()
    return target_auroc(scores.to_numpy(), labels)


def test_de_ranks_true_targets_on_a_sparse_graph():
    # DE also flags the descendants of a target; on a sparse graph few genes are descendants
    adata = simulate("paper-synthetic", sim="linear", seed=0, design=SyntheticDesign(parents=0.5))
    model = MODELS["de"]().fit(adata[adata.obs["split"] == "train"], progress=False)
    assert truth_auroc(model, adata) > 0.9


def test_target_scores_on_paper_synthetic(fitted, data):
    adata = data[0]
    for name in ("de", "additive", "mlp"):  # measured ≈ 0.85, 0.83, 0.82 (chance: 0.5)
        assert truth_auroc(fitted[name], adata) > 0.75, name
    assert list(fitted["de"].target_probabilities().index) == TRAIN_PERTS


def test_de_refuses_unseen_perturbations_and_cells(fitted):
    with pytest.raises(ValueError, match="seen in fit: 'pert_55'"):
        fitted["de"].target_probabilities(["pert_00", "pert_55"])
    with pytest.raises(NotImplementedError, match="ranks targets only"):
        fitted["de"].predict(["pert_00"])
    with pytest.raises(NotImplementedError):
        fitted["control"].target_probabilities()


@pytest.mark.parametrize("name", ["control", "additive", "mlp", "de"])
def test_save_load_roundtrip(fitted, tmp_path, name):
    model = fitted[name]
    model.save(tmp_path / name)
    loaded = PerturbationModel.load(tmp_path / name)
    assert type(loaded) is type(model) and loaded.options == model.options
    if model.has_target_scores:
        pd.testing.assert_frame_equal(loaded.target_probabilities(TRAIN_PERTS),
                                      model.target_probabilities(TRAIN_PERTS))
    if name != "de":
        args = (["pert_00", "pert_45"], [0.75, 1.5])
        a, b = model.predict(*args, n_cells=50, seed=3), loaded.predict(*args, n_cells=50, seed=3)
        np.testing.assert_array_equal(a.X, b.X)
        assert not np.array_equal(a.X, model.predict(*args, n_cells=50, seed=4).X)


@pytest.mark.parametrize("name", ["additive", "mlp"])
def test_unseen_perturbation_needs_features(fitted, data, name):
    model = fitted[name]
    with pytest.raises(ValueError, match="'brand_new'"):
        model.predict(["brand_new"], 1.0, n_cells=10)
    feats = data[0].uns["perturbation_features"].loc[["pert_50"]].set_axis(["brand_new"])
    new = model.predict(["brand_new"], 1.0, features=feats, n_cells=10, seed=1)
    ref = model.predict(["pert_50"], 1.0, n_cells=10, seed=1)
    np.testing.assert_allclose(new.X, ref.X, rtol=1e-6)


def test_control_and_mean_shift_predict_any_name(fitted, data):
    """They ignore the perturbation: any name (an unseen knockout) gets the same answer."""
    _, train = data[0], data[1]
    x0 = fitted["control"].control_cells_.double().mean(0).numpy()
    ctrl = fitted["control"].predict(["brand_new"], n_cells=2000, seed=0).X.mean(0)
    np.testing.assert_allclose(ctrl, x0, atol=0.1)
    mean_ko = MODELS["mean-shift"](seed=0).fit(train)
    a, b = (mean_ko.predict([p], n_cells=2000, seed=0).X.mean(0) for p in ("brand_new", "x+y"))
    np.testing.assert_allclose(a - x0, mean_ko.shift_.numpy(), atol=0.1)
    np.testing.assert_allclose(a, b)


def test_truncated_checkpoint_raises(fitted, tmp_path):
    fitted["additive"].save(tmp_path / "m")
    f = tmp_path / "m" / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        PerturbationModel.load(tmp_path / "m")


def test_additive_with_one_hot_features_reproduces_each_mean_shift():
    """One-hot codes share nothing across perturbations, so leave-one-perturbation-out CV
    cannot choose α; the baseline takes the smallest α, i.e. each perturbation's own mean
    shift (the Sachs protocol's seed 1 had picked a large α and shrunk every shift)."""
    from causalpert.benchmark.protocols import sachs

    pdata = sachs(seed=1)
    model = MODELS["additive"](seed=0).fit(pdata.train, progress=False, **pdata.fit_kwargs)
    assert model.alpha_ == min(model.options["alphas"])
    test = pdata.tests["id"]
    rels = []
    for name in ["cd3cd28+ly", "pma", "b2camp"]:
        obs = test[test.obs["perturbation"] == name].X
        pred = model.predict([name], n_cells=len(obs), seed=0).X
        rels.append(edist_rel(pred, obs, x_control=pdata.x_control))
    assert max(rels) < 0.2, rels
