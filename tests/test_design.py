"""Experimental design (``cp.design.rank``, ``causalpert design``) on a tiny seeded
paper-synthetic problem with a K = 3 ensemble of GIM: disagreement is high away from the
training data, near-duplicates are not picked twice, scores are reproducible, inputs are
checked, and the CLI writes the ranking."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import causalpert as cp
from causalpert.cli import app
from causalpert.data import SyntheticDesign, simulate
from causalpert.design import COLUMNS, read_candidates
from causalpert.models import GIM, MODELS, Ensemble

DESIGN = SyntheticDesign(d=8, n_features=12, n_train_perturbations=12, n_ood_perturbations=4,
                         n_control=300, n_test_cells=60)
runner = CliRunner()


@pytest.fixture(scope="module")
def setup():
    adata = simulate("paper-synthetic", sim="linear", seed=1, design=DESIGN)
    train = adata[adata.obs["split"] == "train"].copy()
    # 600/200 steps: at 300/100 a member can still be far off on a training perturbation
    # (far/seen measured 1.5 with ensemble seed 1)
    # default (CV-chosen) heads: the members predict new compounds from a draw of their heads'
    # posterior (GIM.head_draws); without the draws the RBF heads (EC50, Hill) revert to the
    # training mean far from the data and far/seen fell from 4.0 (ridge heads) to 0.43
    ens = Ensemble(GIM(causal="linear", steps=600, refit_steps=200), n=3, seed=0)
    ens.fit(train, progress=False)
    F = adata.uns["perturbation_features"]
    seen = list(adata.uns["perturbation_split"]["train"])
    # new compounds far from the training features: the unseen ones' features × 3
    far = F.loc[list(adata.uns["perturbation_split"]["full_ood"])] * 3
    far.index = [f"far_{i}" for i in range(len(far))]
    return ens, F.loc[seen], far


def test_disagreement_is_higher_far_from_the_training_data(setup):
    ens, seen, far = setup
    ranked = cp.design.rank(ens, pd.concat([seen, far]), doses=[1.0], k=4)
    assert list(ranked.columns) == list(COLUMNS) and len(ranked) == 16
    assert ranked["rank"].tolist() == list(range(1, 17)) and ranked["selected"].sum() == 4
    is_far = ranked["candidate"].str.startswith("far_")
    s_far, s_seen = ranked.loc[is_far, "score"].mean(), ranked.loc[~is_far, "score"].mean()
    # the members agree where they saw data (dose 1 is a training dose); far/seen measured
    # 877 / 5.7 here, 139 / 0.22 with data seed 2 (ridge heads: 33 / 5.7, 54 / 0.22;
    # bench/design_far_seen.py)
    assert s_far > 2 * s_seen, (s_far, s_seen)
    assert ranked["experiment"].iloc[0] == f"{ranked['candidate'].iloc[0]} @ 1"
    # the first pick: the top of s = c / max c + g / max g, c = score × information density
    # (ρ ∈ (0, 1]; a far experiment is an outlier of the candidates' predicted shifts, so its
    # ρ is the smaller), g the edge term
    c = ranked["score"] * ranked["density"]
    g = ranked["edge_gain"]
    np.testing.assert_allclose(ranked["value"], c / c.max() + g / g.max())
    assert (ranked["value"] == ranked["value"].max()).iloc[0]
    assert ranked["density"].between(0, 1).all()
    assert ranked.loc[is_far, "density"].mean() < ranked.loc[~is_far, "density"].mean()
    cells = cp.design.rank(ens, pd.concat([seen, far]), doses=[1.0], k=4, edges=0)
    c = cells["score"] * cells["density"]
    assert (c == c.max()).iloc[0] and np.allclose(cells["value"], c)
    plain = cp.design.rank(ens, pd.concat([seen, far]), doses=[1.0], k=4, density=0, edges=0)
    assert (plain["score"] == plain["score"].max()).iloc[0]
    # what drives it: 3 genes, their share, the members' spread over targets
    assert ranked["top_genes"].str.split(",").map(len).eq(3).all()
    assert ranked["top_share"].between(0, 1).all() and (ranked["target_sd"] >= 0).all()
    assert ranked["similar_to"].iloc[0] == "" and np.isnan(ranked["similarity"].iloc[0])
    assert ranked["similar_to"].iloc[1:].ne("").all()


def test_target_sd_is_the_members_spread_over_targets(setup):
    ens, _, _ = setup
    ranked = cp.design.rank(ens, ["pert_00", "pert_01"], doses=[0.5, 2.0], k=2)
    sd = ens.target_probabilities_sd(["pert_00", "pert_01"]).sum(1)
    got = ranked.groupby("candidate")["target_sd"].agg(["min", "max"])
    np.testing.assert_allclose(got["min"], sd.loc[got.index])
    np.testing.assert_allclose(got["max"], sd.loc[got.index])


def test_edge_term_is_the_out_edge_variance_an_experiment_removes(setup):
    """g(e) = Σ_g V_g π̄_g / (n_g + π̄_g), V_g the members' variance of g's out-edges and n_g
    the training perturbations' summed π of g: recomputed here from the ensemble itself."""
    ens, _, _ = setup
    names = ["pert_00", "pert_01", "pert_02"]
    ranked = cp.design.rank(ens, names, doses=[0.5, 2.0], k=2)
    sd = ens.graph_sd().to_numpy()
    V = (sd**2).sum(1) - np.diag(sd) ** 2
    n = ens.target_probabilities().to_numpy().sum(0)
    P = ens.target_probabilities(names).to_numpy()
    want = (P / (n + P) * V).sum(1)
    got = ranked.groupby("candidate")["edge_gain"].agg(["min", "max"]).loc[names]
    np.testing.assert_allclose(got["min"], want)
    np.testing.assert_allclose(got["max"], want)  # the same at every dose
    assert (V > 0).all() and (want > 0).all()  # K = 3 members differ on every row of W


def test_edge_gain_closed_form_and_the_batch_spreads_its_hits():
    from causalpert.design import _greedy, combined_score, edge_gain, edge_variance

    sd = np.array([[9.0, 1.0, 2.0], [0.0, 9.0, 0.0], [1.0, 1.0, 9.0]])
    np.testing.assert_allclose(edge_variance(sd), [5.0, 0.0, 2.0])  # diagonal ignored
    P = np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 0.0]])
    V, n = np.array([4.0, 1.0, 2.0]), np.array([0.0, 3.0, 1.0])
    # never-hit gene 0: all of V_0; gene 2 hit once before: 0.5 / 1.5 of V_2
    np.testing.assert_allclose(edge_gain(P, V, n), [4.0, 4.0 * 0.5 / 0.5 + 2 / 3, 0.0])
    assert np.isnan(edge_gain(np.full((1, 3), np.nan), V, n)).all()
    c, g = np.array([2.0, 1.0, -1.0]), np.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(combined_score(c, g, 1.0), [1.0, 1.0, 0.5])
    np.testing.assert_allclose(combined_score(c, g, 0.0), c)
    np.testing.assert_allclose(combined_score(c, np.full(3, np.nan), 1.0), c)
    np.testing.assert_allclose(combined_score(c, np.zeros(3), 2.0), c / 2)  # max g = 0: adds 0
    # two experiments hitting never-hit gene 0, one hitting gene 1 (V_1 smaller), no
    # disagreement in cells and orthogonal shifts: the second hit of gene 0 gains half as
    # much (n_0: 0 → 1), so gene 1's experiment comes second
    P = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    V, n = np.array([1.0, 0.6]), np.zeros(2)
    order, batch, _, _ = _greedy(np.zeros(3), np.eye(3), 0.0, (1.0, P, V, n))
    assert order.tolist() == [0, 2, 1]
    np.testing.assert_allclose(batch, [1.0, 0.5, 0.6])
    assert n.tolist() == [0.0, 0.0]  # the caller's counts are not changed


def test_near_duplicates_are_not_picked_twice(setup):
    ens, _, far = setup
    top = cp.design.rank(ens, far, k=1)["candidate"].iloc[0]
    twice = pd.concat([far, far.loc[[top]].set_axis(["copy_of_top"])])
    plain = cp.design.rank(ens, twice, k=3, diversity=0)
    picked = set(plain.loc[plain["selected"], "candidate"])
    assert {top, "copy_of_top"} <= picked  # without the rule: both (same cells, same score)
    div = cp.design.rank(ens, twice, k=3)
    pair = div[div["candidate"].isin([top, "copy_of_top"])]
    assert pair["score"].nunique() == 1  # common random numbers: identical predictions
    assert pair["selected"].sum() == 1
    dup = pair[~pair["selected"]].iloc[0]
    assert dup["similarity"] == pytest.approx(1.0) and dup["batch_score"] == pytest.approx(0)
    # the same drug at two adjacent doses: one of them
    doses = cp.design.rank(ens, far.loc[[top]], doses=[1.0, 1.05], k=2)
    assert doses["similarity"].iloc[1] > 0.99
    assert doses["batch_score"].iloc[1] < 0.05 * doses["score"].iloc[1]


def test_scores_are_reproducible(setup):
    ens, seen, _ = setup
    names = list(seen.index[:4])
    a = cp.design.rank(ens, names, doses=[0.5, 1.5], k=3, seed=3)
    b = cp.design.rank(ens, names, doses=[0.5, 1.5], k=3, seed=3)
    pd.testing.assert_frame_equal(a, b)
    c = cp.design.rank(ens, names, doses=[0.5, 1.5], k=3, seed=4)
    assert not np.allclose(a.sort_values("experiment")["score"],
                           c.sort_values("experiment")["score"])


@pytest.mark.parametrize("kw, match", [
    ({"candidates": []}, "no candidates"),
    ({"candidates": "pert_00"}, "candidates must be a list"),
    ({"candidates": ["pert_00", "pert_00"]}, "repeat"),
    ({"candidates": ["not_a_drug"]}, "unknown perturbation 'not_a_drug'"),
    ({"doses": []}, "doses must be"),
    ({"doses": [-1.0]}, "doses must be"),
    ({"doses": ["high"]}, "doses must be numbers"),
    ({"k": 0}, "k must be an integer ≥ 1"),
    ({"n_cells": 1}, "n_cells must be an integer ≥ 2"),
    ({"diversity": 2.0}, r"diversity must be in \[0, 1\]"),
    ({"density": -1.0}, "density must be a number ≥ 0"),
    ({"edges": -1.0}, "edges must be a number ≥ 0"),
    ({"smiles": True}, "smiles=True is for a list"),
])
def test_bad_inputs_are_one_line(setup, kw, match):
    ens, seen, _ = setup
    args = {"candidates": ["pert_00"], **kw}
    if kw.get("smiles"):
        args["candidates"] = seen
    with pytest.raises(ValueError, match=match) as err:
        cp.design.rank(ens, args.pop("candidates"), **args)
    assert "\n" not in str(err.value)


def test_information_density_closed_form():
    from causalpert.design import information_density

    # squared distances 0, 9, 9 → h = median over ordered pairs = 9
    rho = information_density(np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 0.0]]))
    np.testing.assert_allclose(rho, [(1 + np.exp(-1)) / 2, (1 + np.exp(-1)) / 2, np.exp(-1)])
    assert information_density(np.zeros((1, 3))).tolist() == [1.0]
    np.testing.assert_allclose(information_density(np.zeros((4, 2))), 1.0)  # h = 0 → 1


def test_design_needs_a_fitted_ensemble(setup):
    ens, _, _ = setup
    for model in (ens.members_[0], Ensemble(GIM(), n=2), "ens"):
        with pytest.raises(ValueError, match=r"design needs a fitted cp\.Ensemble") as err:
            cp.design.rank(model, ["pert_00"])
        assert "\n" not in str(err.value)
    one = Ensemble(GIM(), n=1)
    one._set_members([ens.members_[0]._checkpoint()])
    with pytest.raises(ValueError, match="≥ 2 members"):
        cp.design.rank(one, ["pert_00"])


def _knockouts(d: int = 8, seed: int = 0):
    """Control + a knockdown (drift shift −3) of each of the first d − 1 genes of a random
    linear graph (as tests/models/test_gim_genetic.py)."""
    import anndata as ad
    import torch

    from causalpert.core import sample_stationary
    from causalpert.data.ground_truth import random_drift

    drift, _ = random_drift(d, "linear", np.random.default_rng(seed), parents=1.5)
    names = ["control"] + [f"g{j}" for j in range(d - 1)]
    shift = torch.zeros(len(names), d, dtype=torch.float64)
    for k in range(1, len(names)):
        shift[k, k - 1] = -3.0
    sizes = [400] + [100] * (len(names) - 1)
    cells = sample_stationary(drift, shift, drift.log_sigma.detach().expand(len(names), -1),
                              max(sizes), generator=torch.Generator().manual_seed(seed))
    x = np.concatenate([cells[k, :n].numpy() for k, n in enumerate(sizes)]).astype(np.float32)
    obs = pd.DataFrame({"perturbation": np.repeat(names, sizes)},
                       index=[f"c{i}" for i in range(sum(sizes))])
    adata = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(d)]))
    adata.uns["intended_targets"] = {p: p for p in names[1:]}
    return adata


def test_genes_to_knock_out_and_pairs():
    """A genetic GIM ranks knockouts of modelled genes never knocked out and pairs 'A+B'."""
    adata = _knockouts()
    ens = Ensemble(GIM(steps=300, refit_steps=100), n=2, seed=0)
    ens.fit(adata[adata.obs["perturbation"] != "g6"].copy(), dose_key=None, progress=False)
    ranked = cp.design.rank(ens, ["g0", "g6", "g7", "g0+g1"], k=2, n_cells=100)
    assert set(ranked["candidate"]) == {"g0", "g6", "g7", "g0+g1"}
    assert np.isfinite(ranked[["score", "target_sd", "mean_spread"]].to_numpy()).all()
    assert ranked["selected"].sum() == 2


def test_smiles_candidates_and_models_without_a_gim(setup):
    """{name: SMILES} or a list with smiles=True, on an ensemble of the additive baseline."""
    pytest.importorskip("rdkit")
    adata = simulate("paper-synthetic", sim="linear", seed=1, design=DESIGN)
    train = adata[adata.obs["split"] == "train"].copy()
    del train.uns["perturbation_features"]
    seen = sorted(set(train.obs["perturbation"]) - {"control"})
    chain = ["C" * (i + 2) + "O" for i in range(len(seen))]  # ethanol, propanol, …
    train.uns["smiles"] = dict(zip(seen, chain, strict=True))
    ens = Ensemble(MODELS["additive"](), n=2, seed=0)
    ens.fit(train, featurizer=cp.pp.SmilesFeaturizer(n_bits=64), progress=False)
    new = {"benzene": "c1ccccc1", "phenol": "Oc1ccccc1", "ethanol": chain[0]}
    ranked = cp.design.rank(ens, new, doses=[1.0, 2.0], k=2)
    assert set(ranked["candidate"]) == set(new) and len(ranked) == 6
    listed = cp.design.rank(ens, list(new.values()), doses=[1.0, 2.0], k=2, smiles=True)
    np.testing.assert_allclose(np.sort(listed["score"]), np.sort(ranked["score"]))
    with pytest.raises(ValueError, match="invalid SMILES"):
        cp.design.rank(ens, {"x": "not-a-molecule"})


def test_read_candidates(tmp_path):
    (tmp_path / "names.txt").write_text("# knockouts\npert_00\n\n g03 \n")
    assert read_candidates(tmp_path / "names.txt") == ["pert_00", "g03"]
    (tmp_path / "one.csv").write_text("perturbation\npert_00\npert_01\n")
    assert read_candidates(tmp_path / "one.csv") == ["pert_00", "pert_01"]
    (tmp_path / "smi.csv").write_text("name,smiles\naspirin,CC(=O)Oc1ccccc1C(=O)O\n")
    assert read_candidates(tmp_path / "smi.csv") == {"aspirin": "CC(=O)Oc1ccccc1C(=O)O"}
    (tmp_path / "f.csv").write_text("name,f0,f1\na,0.1,0.2\nb,0.3,0.4\n")
    F = read_candidates(tmp_path / "f.csv")
    assert list(F.index) == ["a", "b"] and F.shape == (2, 2)
    (tmp_path / "bad.csv").write_text("name,f0\na,x\nb,y\n")
    (tmp_path / "bad.csv").write_text("name,f0,f1\na,x,1\nb,y,2\n")
    for name, match in (("missing.txt", "not found"), ("bad.csv", "not numeric")):
        with pytest.raises((ValueError, FileNotFoundError), match=match):
            read_candidates(tmp_path / name)
    for empty in ("empty.txt", "empty.csv"):
        (tmp_path / empty).write_text("\n# nothing\n" if empty.endswith("txt") else "")
        with pytest.raises(ValueError, match="is empty"):
            read_candidates(tmp_path / empty)


def test_cli_ranks_writes_csv_and_fails_in_one_line(setup, tmp_path):
    ens, _, far = setup
    ens.save(tmp_path / "ens")
    far.rename_axis("name").to_csv(tmp_path / "new.csv")
    out = tmp_path / "ranked.csv"
    res = runner.invoke(app, ["design", str(tmp_path / "ens"), "--candidates",
                              str(tmp_path / "new.csv"), "--top", "2", "--doses", "0.5,1,2",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    ranked = pd.read_csv(out)
    assert len(ranked) == 12 and ranked["selected"].sum() == 2
    assert list(ranked.columns) == list(COLUMNS)
    assert "next experiments" in res.output and "what drives it" in res.output
    assert ranked.loc[0, "candidate"] in res.output
    # the same ranking as the library call on the loaded ensemble
    lib = cp.design.rank(ens, far, doses=[0.5, 1, 2], k=2)
    np.testing.assert_allclose(ranked["score"], lib["score"], rtol=1e-6)
    (tmp_path / "names.txt").write_text("pert_00\npert_01\n")
    res = runner.invoke(app, ["design", str(tmp_path / "ens"), "-c",
                              str(tmp_path / "names.txt"), "--top", "1"])
    assert res.exit_code == 0 and "pert_0" in res.output, res.output
    res = runner.invoke(app, ["design", str(tmp_path / "ens"), "-c", str(tmp_path / "new.csv"),
                              "--doses", "0.5,1,2", "--density", "0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    plain = cp.design.rank(ens, far, doses=[0.5, 1, 2], k=8, density=0)
    assert pd.read_csv(out)["experiment"].tolist() == plain["experiment"].tolist()

    ens.members_[0].save(tmp_path / "single")
    (tmp_path / "bad.txt").write_text("pert_00\nnot_a_drug\n")
    (tmp_path / "empty.txt").write_text("")
    cases = [(["single", "names.txt"], "not an ensemble"),
             (["ens", "bad.txt"], "unknown perturbation 'not_a_drug'"),
             (["ens", "empty.txt"], "is empty"),
             (["ens", "missing.txt"], "not found"),
             (["nowhere", "names.txt"], "nowhere")]
    for (model, cand), match in cases:
        res = runner.invoke(app, ["design", str(tmp_path / model), "--candidates",
                                  str(tmp_path / cand), "--out", str(tmp_path / "x.csv")])
        assert res.exit_code == 1 and match in res.output, res.output
        assert res.output.strip().count("\n") == 0 and res.output.startswith("error:")
    res = runner.invoke(app, ["design", str(tmp_path / "ens"), "-c", str(tmp_path / "names.txt"),
                              "--doses", "low"])
    assert res.exit_code == 1 and "--doses must be" in res.output
    assert not (tmp_path / "x.csv").exists()
