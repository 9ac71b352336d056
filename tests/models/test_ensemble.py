"""Ensemble: bootstrap members of GIM on a small seeded problem — members, mixture prediction,
graph summaries, persistence, serial = parallel, input checks."""

import numpy as np
import pytest
from safetensors.torch import load_file

import causalpert as cp
from causalpert.data import SyntheticDesign, simulate
from causalpert.models import GIM, CheckpointError, Ensemble, NotFittedError, PerturbationModel
from causalpert.models.ensemble import bootstrap_indices, subsample_indices

DESIGN = SyntheticDesign(d=8, n_features=12, n_train_perturbations=12, n_ood_perturbations=4,
                         n_control=300, n_test_cells=60)


@pytest.fixture(scope="module")
def data():
    adata = simulate("paper-synthetic", sim="linear", seed=1, design=DESIGN)
    return adata, adata[adata.obs["split"] == "train"].copy()


@pytest.fixture(scope="module")
def ens(data):
    _, train = data
    template = GIM(causal="linear", steps=300, refit_steps=100)
    return Ensemble(template, n=3, seed=0).fit(train, progress=False)


def test_bootstrap_resamples_within_contexts():
    pert = np.array(["control"] * 6 + ["a"] * 4 + ["a"] * 3 + ["b"] * 5)
    dose = np.array([0.0] * 6 + [1.0] * 4 + [2.0] * 3 + [1.0] * 5)
    idx = bootstrap_indices(pert, dose, seed=0, member=0)
    assert len(idx) == len(pert)
    keys = list(zip(pert, dose, strict=True))
    assert sorted(keys[i] for i in idx) == sorted(keys)  # every context keeps its count
    assert len(set(idx.tolist())) < len(idx)  # with replacement: repeats
    assert np.array_equal(idx, bootstrap_indices(pert, dose, seed=0, member=0))
    assert not np.array_equal(idx, bootstrap_indices(pert, dose, seed=0, member=1))


def test_subsamples_draw_distinct_cells_within_contexts(data):
    pert = np.array(["control"] * 10 + ["a"] * 5 + ["a"] * 2 + ["b"] * 3)
    dose = np.array([0.0] * 10 + [1.0] * 5 + [2.0] * 2 + [1.0] * 3)
    idx = subsample_indices(pert, dose, seed=0, member=0, fraction=0.6)
    assert len(set(idx.tolist())) == len(idx)  # without replacement
    keys = [(pert[i], dose[i]) for i in idx]
    # round(0.6 n) per context, at least 2: control 6, (a, 1) 3, (a, 2) 2, b 2
    assert [keys.count(k) for k in [("control", 0), ("a", 1), ("a", 2), ("b", 1)]] == [6, 3, 2, 2]
    assert not np.array_equal(idx, subsample_indices(pert, dose, seed=0, member=1, fraction=0.6))
    # an ensemble's members get these rows
    _, train = data
    ens = Ensemble(GIM(steps=5, refit_steps=0, evidence_cells=0), n=2, seed=3, subsample=0.5)
    rows = ens._member_rows(train.obs["perturbation"].to_numpy(), train.obs["dose"].to_numpy(), 1)
    assert len(set(rows.tolist())) == len(rows) and 0.45 < len(rows) / train.n_obs < 0.55
    with pytest.raises(ValueError, match="subsample must be a fraction"):
        Ensemble(GIM(), n=2, subsample=1.5)
    with pytest.raises(ValueError, match="pass one of them"):
        Ensemble(GIM(), n=2, subsample=0.5, bootstrap=False)


def test_members_differ_and_are_gims(ens):
    assert [m.seed for m in ens.members_] == [0, 1, 2]
    assert all(type(m) is GIM and m.options == ens.template.options for m in ens.members_)
    G = [m.graph().to_numpy() for m in ens.members_]
    assert np.abs(G[0] - G[1]).max() > 1e-3
    c = [m.control_cells_ for m in ens.members_]  # control cells are resampled too
    assert c[0].shape == c[1].shape and not np.array_equal(c[0], c[1])


def test_graph_summaries_agree_with_members_and_find_true_edges(ens, data):
    adata, _ = data
    G = np.stack([m.graph().to_numpy() for m in ens.members_])
    assert np.allclose(ens.graph().to_numpy(), G.mean(0))
    assert np.allclose(ens.graph_sd().to_numpy(), G.std(0, ddof=1))
    P = ens.edge_probability().to_numpy()
    assert set(np.unique(P)) <= {0, 1 / 3, 2 / 3, 1} and np.all(np.diag(P) == 0)
    truth = np.asarray(adata.uns["truth"]["adjacency"]) != 0
    off = ~np.eye(len(truth), dtype=bool)
    on, no = P[truth & off].mean(), P[~truth & off].mean()
    assert on > no + 0.2, (on, no)  # measured 0.72 vs 0.35
    edges = ens.edges()
    assert list(edges.columns) == ["source", "target", "weight", "edge_probability", "sd"]
    assert len(edges) == 8 * 7


def test_targets_are_member_means(ens):
    T = np.stack([m.target_probabilities().to_numpy() for m in ens.members_])
    assert np.allclose(ens.target_probabilities().to_numpy(), T.mean(0))
    assert np.allclose(ens.target_probabilities_sd().to_numpy(), T.std(0, ddof=1))
    mean, sd = ens.target_probabilities_stats(["pert_01", "pert_00"])
    assert list(mean.index) == list(sd.index) == ["pert_01", "pert_00"]
    assert np.allclose(mean.to_numpy(), T.mean(0)[[1, 0]])
    assert np.allclose(sd.to_numpy(), T.std(0, ddof=1)[[1, 0]])
    S = np.stack([m.target_scores(["pert_00"]).to_numpy() for m in ens.members_])
    assert np.allclose(ens.target_scores(["pert_00"]).to_numpy(), S.mean(0))


def test_predict_draws_from_every_member(ens):
    pred = ens.predict(["pert_00", "pert_01"], doses=[1.0, 2.0], n_cells=90, seed=3)
    assert pred.shape == (180, 8) and np.isfinite(pred.X).all()
    assert list(pred.obs["perturbation"].cat.categories) == ["pert_00", "pert_01"]
    assert pred.obs.groupby("perturbation", observed=True)["dose"].first().tolist() == [1, 2]
    share = pred.obs.groupby(["perturbation", "member"], observed=True).size()
    assert len(share) == 6 and share.min() >= 15  # Multinomial(90, 1/3): mean 30
    again = ens.predict(["pert_00", "pert_01"], doses=[1.0, 2.0], n_cells=90, seed=3)
    assert np.array_equal(pred.X, again.X)
    other = ens.predict(["pert_00", "pert_01"], doses=[1.0, 2.0], n_cells=90, seed=4)
    assert not np.array_equal(pred.X, other.X)


def test_predict_reports_the_members_head_sd(ens, data):
    """obs["effect_sd"] of the mixture = √(mean over members of sd²): 0 for a seen drug,
    > 0 for a new one (GIM.predict reports it per member)."""
    adata, _ = data
    split = adata.uns["perturbation_split"]
    seen, new = split["train"][0], split["full_ood"][0]
    pred = ens.predict([seen, new], n_cells=30, seed=0)
    got = pred.obs.groupby("perturbation", observed=True)["effect_sd"].agg(["min", "max"])
    np.testing.assert_allclose(got["min"], got["max"])
    sd = np.stack([m.head_uncertainty([seen, new])["effect_sd"] for m in ens.members_])
    np.testing.assert_allclose(got.loc[[seen, new], "min"], np.sqrt((sd ** 2).mean(0)))
    assert got.loc[seen, "min"] == 0 and got.loc[new, "min"] > 0


def test_save_load_round_trip(ens, tmp_path):
    ens.save(tmp_path / "ens")
    back = PerturbationModel.load(tmp_path / "ens")
    assert isinstance(back, Ensemble) and len(back.members_) == 3 and back.seed == ens.seed
    a = ens.predict(["pert_02"], n_cells=50, seed=7)
    b = back.predict(["pert_02"], n_cells=50, seed=7)
    assert np.array_equal(a.X, b.X) and a.obs.equals(b.obs)
    assert back.edges().equals(ens.edges())
    assert Ensemble.load(tmp_path / "ens").options == ens.options
    tensors = load_file(tmp_path / "ens" / "model.safetensors")  # a file any reader opens
    assert {k.split(".")[0] for k in tensors} == {"member0", "member1", "member2"}


def test_corrupt_ensemble_checkpoint_is_one_line(ens, tmp_path):
    ens.save(tmp_path / "ens")
    meta = (tmp_path / "ens" / "model.json").read_text()
    (tmp_path / "ens" / "model.json").write_text(meta.replace('"template"', '"templat"'))
    with pytest.raises(CheckpointError, match="corrupt") as err:
        PerturbationModel.load(tmp_path / "ens")
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def serial(data):
    _, train = data
    return Ensemble(GIM(causal="linear", steps=60, refit_steps=20), n=2, seed=5,
                    workers=1).fit(train, progress=False)


def _same_members(a: Ensemble, b: Ensemble) -> None:
    (ta, ma), (tb, mb) = a._checkpoint(), b._checkpoint()
    assert ta.keys() == tb.keys() and len(ma["members"]) == 2
    assert all(np.array_equal(ta[k].numpy(), tb[k].numpy()) for k in ta)
    for x, y in zip(ma["members"], mb["members"], strict=True):  # all but the wall times
        x["extra"].pop("history"), y["extra"].pop("history")
        assert x == y


def test_pooled_fit_equals_serial(data, serial):
    _, train = data
    pooled = Ensemble(serial.template, n=2, seed=5, workers=2).fit(train, progress=False)
    _same_members(serial, pooled)


def test_ray_fit_equals_serial(data, serial):
    ray = pytest.importorskip("ray")
    _, train = data
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        remote = Ensemble(serial.template, n=2, seed=5, executor="ray").fit(train,
                                                                            progress=False)
    finally:
        ray.shutdown()
    _same_members(serial, remote)


@pytest.mark.parametrize("make, match", [
    (lambda: Ensemble(GIM(), n=0), "n must be an integer ≥ 1"),
    (lambda: Ensemble(GIM(), n=2.5), "n must be an integer ≥ 1"),
    (lambda: Ensemble("gim", n=2), "template must be a model"),
    (lambda: Ensemble(Ensemble(GIM(), n=2), n=2), "registered model"),
    (lambda: Ensemble(GIM(), executor="dask"), "unknown executor"),
    (lambda: Ensemble(GIM(), workers=0), "workers must be"),
    (lambda: Ensemble(GIM(), seed=-1), "seed must be"),
    (lambda: Ensemble(GIM(), edge_threshold=1.5), "edge_threshold"),
    (lambda: Ensemble(GIM(), address="ray://head:10001"), "address= is for"),
])
def test_bad_arguments_raise_one_line(make, match):
    with pytest.raises(ValueError, match=match) as err:
        make()
    assert "\n" not in str(err.value)


def test_bad_use_raises_one_line(ens, data):
    _, train = data
    with pytest.raises(NotFittedError, match="not fitted"):
        Ensemble(GIM(), n=2).predict(["pert_00"])
    for kw, match in [({"n_cells": 0}, "n_cells"), ({"mode": "best"}, "unknown mode"),
                      ({"seed": -2}, "seed must be")]:
        with pytest.raises(ValueError, match=match):
            ens.predict(["pert_00"], **kw)
    with pytest.raises(ValueError, match="unknown perturbation"):
        ens.predict(["nope"])
    with pytest.raises(ValueError, match="pass the perturbations"):
        ens.predict()
    with pytest.raises(ValueError, match="obs key 'drug' not found"):
        Ensemble(GIM(), n=2).fit(train, perturbation_key="drug")


def test_exported_at_top_level():
    assert cp.Ensemble is Ensemble
