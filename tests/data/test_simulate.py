"""The paper-synthetic protocol: sizes, determinism, and a truth consistent with the cells."""

import dataclasses

import numpy as np
import pytest
import torch

from causalpert.core import LinearDrift, hill, stationary_gaussian
from causalpert.data import SyntheticDesign, simulate


@pytest.fixture(scope="module")
def linear0():
    return simulate("paper-synthetic", sim="linear", seed=0)


def test_split_sizes_follow_the_protocol(linear0):
    obs = linear0.obs
    counts = obs.groupby(["split", "perturbation"], observed=True).size()
    assert linear0.n_vars == 20
    assert (obs["split"] == "train").sum() == 8800
    assert ((obs["perturbation"] == "control") & (obs["split"] == "train")).sum() == 800
    ctx = obs.groupby(["split", "perturbation", "dose"], observed=True).size()
    assert (ctx["train"].drop("control") == 50).all() and len(ctx["train"]) == 161
    assert (ctx["id"] == 50).all() and len(ctx["id"]) == 160
    assert (ctx["partial_ood"] == 200).all() and len(ctx["partial_ood"]) == 200
    assert (ctx["full_ood"] == 200).all() and len(ctx["full_ood"]) == 80
    assert set(counts["full_ood"].index).isdisjoint(counts["train"].index)
    pood = sorted(obs.loc[obs["split"] == "partial_ood", "dose"].unique())
    np.testing.assert_allclose(pood, [0.25, 0.75, 1.25, 1.75, 2.25])
    feats = linear0.uns["perturbation_features"]
    assert feats.shape == (60, 32)
    singles = obs.loc[obs["split"] != "combo", "perturbation"]
    assert set(singles.unique()) - {"control"} <= set(feats.index)


def test_same_seed_same_data_other_seed_other_data(linear0):
    again = simulate("paper-synthetic", sim="linear", seed=0)
    np.testing.assert_array_equal(again.X, linear0.X)
    assert again.obs.equals(linear0.obs)
    np.testing.assert_array_equal(again.uns["perturbation_features"],
                                  linear0.uns["perturbation_features"])
    other = simulate("paper-synthetic", sim="linear", seed=1)
    assert not np.allclose(other.X[:100], linear0.X[:100])


def test_truth_explains_the_cells(linear0):
    """Context means match −W⁻¹(b + a ⊙ H(c)) of the recorded truth."""
    truth = linear0.uns["truth"]
    p = truth["params"]
    d = linear0.n_vars
    drift = LinearDrift(d).double()
    with torch.no_grad():
        for k in ("w_off", "b", "log_sigma"):
            getattr(drift, k).copy_(torch.from_numpy(np.asarray(p[k])))
    assert truth["targets"].sum(1).between(1, 3).all()
    amp = np.abs(truth["effects"].to_numpy()[truth["targets"].to_numpy()])
    assert amp.min() >= 2 and amp.max() <= 5
    name, dose = "pert_03", 1.5
    hl = truth["hill"].loc[name]
    H = float(hill(torch.tensor(dose), torch.tensor(hl["ec50"]),
                   torch.tensor(hl["hill_coefficient"])))
    shift = torch.from_numpy(truth["effects"].loc[name].to_numpy() * H)[None]
    mean, _ = stationary_gaussian(drift.W, drift.b, shift, drift.log_sigma.exp()[None])
    obs = linear0.obs
    sel = (obs["perturbation"] == name) & (obs["dose"] == dose)  # train + id cells
    x = linear0.X[sel.to_numpy()]
    assert np.abs(x.mean(0) - mean[0].numpy()).max() < 4 * x.std(0).max() / np.sqrt(len(x))
    G = np.asarray(truth["graph"])
    assert np.array_equal(G != 0, np.asarray(truth["adjacency"]).astype(bool))


def test_features_carry_the_mechanism(linear0):
    """Perturbations with similar effect vectors have more similar features (not saturated)."""
    f = linear0.uns["perturbation_features"].to_numpy()
    assert np.abs(f).max() < 0.99  # tanh(0.25 · R z) is far from saturation
    a = linear0.uns["truth"]["effects"].to_numpy()
    fd = np.linalg.norm(f[:, None] - f[None], axis=-1)[np.triu_indices(60, 1)]
    ad_ = np.linalg.norm(a[:, None] - a[None], axis=-1)[np.triu_indices(60, 1)]
    assert np.corrcoef(fd, ad_)[0, 1] > 0.5


def test_mlp_truth_small_design_is_deterministic():
    design = SyntheticDesign(d=6, n_train_perturbations=4, n_ood_perturbations=2,
                             n_control=40, n_train_cells=20, n_id_cells=20, n_test_cells=20)
    a = simulate("paper-synthetic", sim="mlp", seed=3, design=design)
    b = simulate("paper-synthetic", sim="mlp", seed=3, design=design)
    np.testing.assert_array_equal(a.X, b.X)
    # combo: n_combo_pairs = 40 is capped at the 6 pairs of 4 training perturbations
    assert np.isfinite(a.X).all() and a.n_obs == 40 + 16 * 20 + 16 * 20 + 20 * 20 + 8 * 20 + 6 * 20
    assert (a.obs["split"] == "combo").sum() == 6 * 20


def test_single_target_protocol():
    a = simulate("single-target", sim="linear", seed=0, design=SyntheticDesign(d=5))
    assert a.n_obs == 800 + 5 * 200
    assert np.array_equal(a.uns["truth"]["targets"].to_numpy(), np.eye(5, dtype=bool))
    assert "combo" not in set(a.obs["split"]) and "combos" not in a.uns["truth"]


def test_unknown_protocol_and_sim():
    with pytest.raises(ValueError, match="unknown protocol"):
        simulate("paper-synthetik")
    with pytest.raises(ValueError, match="unknown ground truth"):
        simulate(sim="cubic")


def test_activity_synthetic_inhibits_genes_with_children():
    """Half the drugs scale their targets' outgoing edges by exp(κ H(c)); the context means
    match the intervened drift −(A diag(α) − I)⁻¹ b, and paper-synthetic is unchanged."""
    adata = simulate("activity-synthetic", sim="linear", seed=2)
    truth = adata.uns["truth"]
    kappa, amp = truth["activity"].to_numpy(), truth["effects"].to_numpy()
    act = np.abs(kappa).sum(1) > 0
    assert 15 <= act.sum() <= 45  # about half of 60
    assert not (np.abs(amp[act]).sum(1) > 0).any()  # an inhibitor does not also shift
    adj = np.asarray(truth["adjacency"]).astype(bool)
    assert adj[np.nonzero(kappa)[1]].any(1).all()  # every inhibited gene has a child
    assert np.array_equal(truth["targets"].to_numpy(), (kappa != 0) | (amp != 0))
    assert kappa[kappa != 0].min() >= -3 and kappa[kappa != 0].max() <= -1.2

    p = truth["params"]
    drift = LinearDrift(adata.n_vars).double()
    with torch.no_grad():
        for k in ("w_off", "b", "log_sigma"):
            getattr(drift, k).copy_(torch.from_numpy(np.asarray(p[k])))
    name = truth["activity"].index[np.flatnonzero(act)[0]]
    hl = truth["hill"].loc[name]
    H = float(hill(torch.tensor(2.0), torch.tensor(hl["ec50"]),
                   torch.tensor(hl["hill_coefficient"])))
    alpha = torch.exp(torch.from_numpy(truth["activity"].loc[name].to_numpy()) * H)[None]
    mean, _ = stationary_gaussian(drift.intervened_W(alpha), drift.b,
                                  torch.zeros(1, adata.n_vars, dtype=torch.float64),
                                  drift.log_sigma.exp()[None])
    sel = ((adata.obs["perturbation"] == name) & (adata.obs["dose"] == 2.0)).to_numpy()
    x = adata.X[sel]
    assert np.abs(x.mean(0) - mean[0].numpy()).max() < 4 * x.std(0).max() / np.sqrt(len(x))


def test_activity_synthetic_refuses_the_mlp_truth():
    with pytest.raises(ValueError, match="activity-synthetic has a linear ground truth only"):
        simulate("activity-synthetic", sim="mlp", seed=0)


SMALL = SyntheticDesign(d=6, n_features=8, n_train_perturbations=6, n_ood_perturbations=2,
                        n_control=40, n_train_cells=20, n_id_cells=20, n_test_cells=200,
                        n_combo_pairs=5)


def _truth_drift(truth, d):
    drift = LinearDrift(d).double()
    with torch.no_grad():
        for k in ("w_off", "b", "log_sigma"):
            getattr(drift, k).copy_(torch.from_numpy(np.asarray(truth["params"][k])))
    return drift


def _hill_at(truth, name, dose):
    hl = truth["hill"].loc[name]
    return float(hill(torch.tensor(dose), torch.tensor(hl["ec50"]),
                      torch.tensor(hl["hill_coefficient"])))


def test_combo_split_pairs_training_perturbations(linear0):
    """40 distinct pairs of training perturbations at dose 1, 200 cells each, after all else."""
    obs = linear0.obs
    combo = (obs["split"] == "combo").to_numpy()
    assert combo.sum() == 40 * 200 and combo[-40 * 200:].all()  # appended at the end
    ctx = obs[combo].groupby(["perturbation", "dose"], observed=True).size()
    assert len(ctx) == 40 and (ctx == 200).all()
    assert (obs.loc[combo, "dose"] == 1.0).all()
    pairs = linear0.uns["perturbation_split"]["combo"]
    train = linear0.uns["perturbation_split"]["train"]
    table = linear0.uns["truth"]["combos"]
    assert len(set(pairs)) == 40 and set(pairs) == set(obs.loc[combo, "perturbation"])
    assert list(table.index) == pairs and list(table.columns) == ["first", "second"]
    for name, (first, second) in table.iterrows():
        assert name == f"{first}+{second}" and first < second
        assert first in train and second in train
    assert not set(pairs) & set(linear0.uns["truth"]["targets"].index)


def test_combo_cells_follow_the_composed_linear_truth(linear0):
    """A pair's cells have mean −W⁻¹(b + a_A H_A(1) + a_B H_B(1)) (shifts add in the model)."""
    truth, d = linear0.uns["truth"], linear0.n_vars
    drift = _truth_drift(truth, d)
    eff = truth["effects"]
    obs = linear0.obs
    for name, (first, second) in truth["combos"].iloc[:5].iterrows():
        u = eff.loc[first].to_numpy() * _hill_at(truth, first, 1.0) \
            + eff.loc[second].to_numpy() * _hill_at(truth, second, 1.0)
        mean, _ = stationary_gaussian(drift.W, drift.b, torch.from_numpy(u)[None],
                                      drift.log_sigma.exp()[None])
        x = linear0.X[(obs["perturbation"] == name).to_numpy()]
        assert np.abs(x.mean(0) - mean[0].numpy()).max() < 4 * x.std(0).max() / np.sqrt(len(x))


def test_combo_split_leaves_the_other_splits_unchanged():
    """The combo split is appended: the other cells, obs and uns equal those without it."""
    a = simulate("paper-synthetic", sim="linear", seed=4, design=SMALL)
    b = simulate("paper-synthetic", sim="linear", seed=4,
                 design=dataclasses.replace(SMALL, n_combo_pairs=0))
    assert "combo" not in set(b.obs["split"]) and "combos" not in b.uns["truth"]
    assert "combo" not in b.uns["perturbation_split"]
    n = b.n_obs
    assert a.n_obs == n + 5 * 200
    np.testing.assert_array_equal(a.X[:n], b.X)
    for col in ("perturbation", "dose", "split"):
        before = b.obs[col].to_numpy().astype(str)
        assert np.array_equal(a.obs[col].to_numpy()[:n].astype(str), before)
    assert list(a.obs.index[:n]) == list(b.obs.index)
    assert a.uns["truth"]["effects"].equals(b.uns["truth"]["effects"])
    assert a.uns["perturbation_features"].equals(b.uns["perturbation_features"])


def test_combo_activity_factors_multiply():
    """activity-synthetic pairs: α = α_A α_B, shifts add; mean of the intervened linear truth."""
    a = simulate("activity-synthetic", sim="linear", seed=5,
                 design=dataclasses.replace(SMALL, n_combo_pairs=15, activity_fraction=0.5))
    truth, d = a.uns["truth"], a.n_vars
    drift = _truth_drift(truth, d)
    inhibits = truth["activity"].abs().sum(1) > 0
    table = truth["combos"]
    mixed = table[inhibits[table["first"]].to_numpy() | inhibits[table["second"]].to_numpy()]
    assert len(mixed)
    for name, (first, second) in mixed.iloc[:3].iterrows():
        h1, h2 = _hill_at(truth, first, 1.0), _hill_at(truth, second, 1.0)
        kap, eff = truth["activity"], truth["effects"]
        log_alpha = kap.loc[first].to_numpy() * h1 + kap.loc[second].to_numpy() * h2
        u = eff.loc[first].to_numpy() * h1 + eff.loc[second].to_numpy() * h2
        alpha = torch.exp(torch.from_numpy(log_alpha))[None]
        mean, _ = stationary_gaussian(drift.intervened_W(alpha), drift.b,
                                      torch.from_numpy(u)[None], drift.log_sigma.exp()[None])
        x = a.X[(a.obs["perturbation"] == name).to_numpy()]
        assert np.abs(x.mean(0) - mean[0].numpy()).max() < 4 * x.std(0).max() / np.sqrt(len(x))


def test_knockout_screen_knocks_down_each_gene_alone():
    """knockout-screen: one knockdown per gene named by the gene, intended targets known; the
    knocked-down gene's mean falls by more than half a control sd, by more than one for most
    (feedback cycles damp some; at d = 40 the median fall is 4–7 sds over seeds 0–2 and both
    truths), the true targets are the identity."""
    design = SyntheticDesign(n_knockout_genes=6, n_control=300, n_knockout_cells=100)
    a = simulate("knockout-screen", sim="linear", seed=0, design=design)
    genes = list(a.var_names)
    assert a.shape == (300 + 6 * 100, 6)
    assert sorted(set(a.obs["perturbation"].astype(str))) == sorted(["control", *genes])
    assert a.uns["intended_targets"] == {g: g for g in genes}
    assert (a.uns["truth"]["targets"].to_numpy() == np.eye(6, dtype=bool)).all()
    assert (a.uns["truth"]["effects"].to_numpy().diagonal() <= -2).all()
    x, lab = np.asarray(a.X), a.obs["perturbation"].astype(str).to_numpy()
    mu0, sd0 = x[lab == "control"].mean(0), x[lab == "control"].std(0)
    fall = np.array([(mu0[j] - x[lab == g, j].mean()) / sd0[j] for j, g in enumerate(genes)])
    assert (fall > 0.5).all() and np.median(fall) > 1.0
    same = simulate("knockout-screen", sim="linear", seed=0, design=design)
    np.testing.assert_array_equal(np.asarray(same.X), x)
