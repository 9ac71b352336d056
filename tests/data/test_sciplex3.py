"""sciplex3 workflow on a generated fixture with the published obs schema: read_sciplex3,
Morgan features from SMILES, and a model that predicts a SMILES string it never saw."""

import doctest
import json
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sciplex3_fixture import ASPIRIN, CAFFEINE, DRUGS, make_sciplex3

import causalpert as cp
from causalpert.data.prepare import prepare
from causalpert.data.sciplex3 import read_sciplex3

SCALED = {10.0: 0.25, 100.0: 0.5, 1000.0: 0.75, 10000.0: 1.0}


@pytest.fixture(scope="module")
def raw():
    return make_sciplex3()


@pytest.fixture(scope="module")
def sci(raw):
    return read_sciplex3(raw, n_genes=30)


def test_layout_doses_and_control(raw, sci):
    a549 = raw.obs["cell_type"] == "A549"
    assert sci.shape == (int(a549.sum()), 30) == (1000, 30)
    assert sci.X.dtype == np.float32 and isinstance(sci.X, np.ndarray)
    assert list(sci.obs_names) == list(raw.obs_names[a549.to_numpy()])
    assert list(sci.var_names) == [g for g in raw.var_names if g in set(sci.var_names)]
    assert (sci.obs["cell_type"] == "A549").all()
    ctrl = (sci.obs["perturbation"] == "control").to_numpy()
    np.testing.assert_array_equal(ctrl, sci.obs["vehicle"].to_numpy())
    assert set(sci.obs.loc[~ctrl, "perturbation"]) == set(DRUGS)
    treated = sci.obs[~ctrl]
    np.testing.assert_allclose(treated["dose"], treated["dose_nM"].map(SCALED))
    np.testing.assert_allclose(treated["dose"], np.log10(treated["dose_nM"]) / 4)
    assert (sci.obs.loc[ctrl, "dose"] == 0).all() and (sci.obs.loc[ctrl, "dose_nM"] == 0).all()
    assert sci.uns["smiles"] == DRUGS
    feats = sci.uns["perturbation_features"]
    assert feats.shape == (8, 2048) and set(feats.index) == set(DRUGS)
    assert sci.uns["featurizer"] == {"kind": "morgan", "radius": 2, "n_bits": 2048}
    assert sci.uns["dataset"] == "sciplex3" and sci.uns["control"] == "control"
    assert prepare(sci).n_contexts == 1 + 8 * 4


def test_log_normalisation_by_hand_and_counts_kept(raw, sci):
    counts = raw.X.toarray()[(raw.obs["cell_type"] == "A549").to_numpy()].astype(np.float64)
    expected = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    cols = raw.var_names.get_indexer(sci.var_names)
    np.testing.assert_allclose(sci.X, expected[:, cols], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(sci.layers["counts"], counts[:, cols])


def test_selected_genes_are_mostly_drug_responsive(raw, sci):
    truth = raw.uns["true_effects"]
    responsive = (truth.abs().max(0) > 0)
    assert responsive.mean() < 0.6  # about half of all genes respond to some drug ...
    assert responsive[sci.var_names].mean() >= 0.8  # ... most of the top variable ones do


def test_already_log_normalised_input_is_not_normalised_again(raw, sci):
    a549 = raw[(raw.obs["cell_type"] == "A549").to_numpy()]
    counts = a549.X.toarray().astype(np.float64)
    x = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4).astype(np.float32)
    logged = ad.AnnData(X=x, obs=a549.obs.copy(), var=a549.var.copy())
    out = read_sciplex3(logged, n_genes=30)
    assert list(out.var_names) == list(sci.var_names) and "counts" not in out.layers
    np.testing.assert_allclose(out.X, sci.X, rtol=1e-5, atol=1e-5)
    logged.uns["log1p"] = {"base": None}
    np.testing.assert_allclose(read_sciplex3(logged, n_genes=30).X, sci.X, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["name", "control01", "dense", "uM", "h5ad"])
def test_tolerated_layouts_give_the_same_result(variant, sci, tmp_path):
    raw = make_sciplex3(vehicle_style=variant if variant in ("name", "control01") else "column",
                        sparse=variant != "dense")
    kwargs = {}
    if variant == "uM":
        raw.obs["dose"] = raw.obs["dose"] / 1000
        kwargs["dose_unit"] = "uM"
    if variant == "h5ad":
        raw.write_h5ad(tmp_path / "sciplex3.h5ad")
        raw = str(tmp_path / "sciplex3.h5ad")
    out = read_sciplex3(raw, n_genes=30, **kwargs)
    np.testing.assert_array_equal(out.X, sci.X)
    for key in ("perturbation", "dose", "split"):
        np.testing.assert_array_equal(out.obs[key].astype(str), sci.obs[key].astype(str))


def test_splits_hold_out_the_top_dose_and_a_fifth_of_the_drugs(raw, sci):
    obs, info = sci.obs, sci.uns["split_info"]
    ood = set(info["full_ood_drugs"])
    assert len(ood) == 2 and ood <= set(DRUGS)  # round(0.2 · 8)
    assert set(obs.loc[obs["split"] == "full_ood", "perturbation"]) == ood
    assert (obs.loc[obs["split"] == "full_ood"].groupby("dose_nM").size() == 50).all()
    pood = obs[obs["split"] == "partial_ood"]
    assert set(pood["dose_nM"]) == {10000.0} and info["held_out_dose_nM"] == 10000.0
    assert set(pood["perturbation"]) == set(DRUGS) - ood
    train = obs[obs["split"] == "train"]
    assert set(train["dose_nM"]) == {0.0, 10.0, 100.0, 1000.0}
    assert (train["perturbation"] == "control").sum() == 200
    other = {tuple(read_sciplex3(raw, n_genes=30, fingerprints=False, seed=s).uns["split_info"]
                   ["full_ood_drugs"]) for s in range(4)}
    assert len(other) > 1  # the seed chooses the drugs
    mid = read_sciplex3(raw, n_genes=30, fingerprints=False, held_out_dose=100)
    assert set(mid.obs.loc[mid.obs["split"] == "partial_ood", "dose_nM"]) == {100.0}


def test_id_split_holds_out_a_tenth_of_every_training_context(raw, sci):
    obs = sci.obs
    held = obs[obs["split"] == "id"]
    train = obs[obs["split"] == "train"]
    assert (held["perturbation"] != "control").all()
    assert set(held["perturbation"]) == set(train["perturbation"]) - {"control"}
    sizes = held.groupby(["perturbation", "dose_nM"], observed=True).size()
    # 25 cells per context in the fixture → round(2.5) = 2; 6 drugs × 3 training doses
    assert (sizes == 2).all() and len(sizes) == 6 * 3
    assert sci.uns["split_info"]["id_fraction"] == 0.1
    none = read_sciplex3(raw, n_genes=30, fingerprints=False, id_fraction=0.0)
    assert (none.obs["split"] == "id").sum() == 0
    np.testing.assert_array_equal(  # the OOD splits do not depend on the id split
        none.obs["split"].isin(["partial_ood", "full_ood"]),
        obs["split"].isin(["partial_ood", "full_ood"]))
    with pytest.raises(ValueError, match="id_fraction must be in"):
        read_sciplex3(raw, n_genes=30, fingerprints=False, id_fraction=1.0)


def _set(key, value, rows=slice(None)):
    def change(adata):
        adata.obs.loc[adata.obs.index[rows], key] = value
        return adata
    return change


def _rename_vehicle(adata):
    del adata.obs["vehicle"]
    adata.obs["product_name"] = adata.obs["product_name"].replace("Vehicle", "Mock")
    return adata


def _negative(adata):
    adata.X = adata.X.toarray() - 0.5
    return adata


BAD = {
    "cell line": (lambda a: a, {"cell_line": "HeLa"},
                  r"^no cells of cell line 'HeLa'; obs\['cell_type'\] has \['A549', 'K562'\]"),
    "no vehicle": (_rename_vehicle, {}, r"^no vehicle cells in A549: mark them in obs\['vehicle'"),
    "dose < 1 nM": (_set("dose", 0.5, slice(300, 310)), {},
                    r"^10 drug-treated cells have a dose below 1 nM or none .*log10\(nM\)/4"),
    "missing dose": (_set("dose", np.nan, slice(300, 301)), {}, r"^1 drug-treated cells have a"),
    "dose unit": (lambda a: a, {"dose_unit": "g"}, r"^dose_unit must be one of \['nM'"),
    "missing key": (lambda a: a, {"drug_key": "drug"}, r"^obs key 'drug' \(drug name\) not found"),
    "n_genes": (lambda a: a, {"n_genes": 301}, r"^n_genes must be between 1 and the 300 genes"),
    "two SMILES": (_set("SMILES", "CCO", slice(300, 301)), {},
                   r"^drug 'Vorinostat \(SAHA\)' has 2 different SMILES in "
                   r"obs\['SMILES'\]: give each"),
    "no SMILES": (_set("SMILES", None, slice(200, 1000)), {}, r"^8 drug\(s\) have no SMILES"),
    "bad SMILES": (_set("SMILES", "C1CC(", slice(200, 1000)), {"n_genes": 5},
                   r"^invalid SMILES 'C1CC\(': RDKit cannot parse it"),
    "not counts": (_negative, {}, r"^the matrix is neither counts .* nor log-normalised"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gives_one_line_error(case):
    change, kwargs, message = BAD[case]
    raw = change(make_sciplex3(n_genes=40 if case != "n_genes" else 300))
    with pytest.raises(ValueError, match=message) as err:
        read_sciplex3(raw, **{"n_genes": 10, **kwargs})
    assert "\n" not in str(err.value)


def test_missing_file_and_missing_optional_packages(raw, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"^no sciplex3 file at"):
        read_sciplex3(tmp_path / "absent.h5ad")
    monkeypatch.setitem(sys.modules, "rdkit", None)
    with pytest.raises(ImportError, match=r'^SMILES features need RDKit: pip install '
                                          r'"causalpert\[chem\]"$'):
        cp.pp.featurize_smiles("CCO")
    with pytest.warns(UserWarning, match="RDKit is not installed"):
        out = read_sciplex3(raw, n_genes=10)
    assert "perturbation_features" not in out.uns and out.uns["smiles"] == DRUGS
    monkeypatch.setitem(sys.modules, "scanpy", None)
    with pytest.raises(ImportError, match=r'need scanpy: pip install "causalpert\[scanpy\]"$'):
        read_sciplex3(raw, n_genes=10, fingerprints=False)


def test_featurize_smiles():
    f = cp.pp.featurize_smiles(DRUGS)
    assert f.shape == (8, 2048) and list(f.index) == list(DRUGS)
    assert list(f.columns[:2]) == ["morgan_0", "morgan_1"] and (f.dtypes == np.float64).all()
    assert set(np.unique(f.to_numpy())) == {0.0, 1.0}
    assert len({tuple(r) for r in f.to_numpy()}) == 8  # different molecules differ
    pd.testing.assert_frame_equal(f, cp.pp.featurize_smiles(DRUGS))  # deterministic
    # the same molecule written two ways, and a hand count: ethanol has 3 distinct atoms
    # (CH3, CH2, OH), so 3 bits at radius 0; radius 1 adds their 3 neighbourhoods
    two = cp.pp.featurize_smiles(["CCO", "OCC"], radius=0)
    assert list(two.index) == ["CCO", "OCC"] and two.shape[1] == 2048
    assert (two.iloc[0] == two.iloc[1]).all() and two.iloc[0].sum() == 3
    assert cp.pp.featurize_smiles("CCO", radius=1).to_numpy().sum() == 6
    small = cp.pp.featurize_smiles(pd.Series({"ethanol": "CCO"}), n_bits=64)
    assert small.shape == (1, 64) and list(small.index) == ["ethanol"]
    with pytest.raises(ValueError, match=r"^invalid SMILES 'C1CC\(': RDKit cannot parse it"):
        cp.pp.featurize_smiles(["CCO", "C1CC("])
    with pytest.raises(ValueError, match=r"^invalid SMILES ''"):
        cp.pp.featurize_smiles([""])
    with pytest.raises(ValueError, match=r"^n_bits must be an integer ≥ 1, got 0"):
        cp.pp.featurize_smiles("CCO", n_bits=0)


def test_featurizer_spec_round_trip():
    from causalpert.pp import SmilesFeaturizer

    spec = SmilesFeaturizer(radius=3, n_bits=512).to_dict()
    assert spec == {"kind": "morgan", "radius": 3, "n_bits": 512}
    assert SmilesFeaturizer.from_dict(json.loads(json.dumps(spec))) == SmilesFeaturizer(3, 512)
    with pytest.raises(ValueError, match=r"^featurizer spec must be a dict with kind='morgan'"):
        SmilesFeaturizer.from_dict({"kind": "maccs"})


# ------------------------------------------------------------------ fit, save, load, predict
@pytest.fixture(scope="module")
def fitted(sci, tmp_path_factory):
    """additive and GIM fitted on the train split with Morgan features, saved and loaded."""
    train = sci[sci.obs["split"] == "train"].copy()
    out = {}
    for name, model in [("additive", cp.MODELS["additive"](seed=0)),
                        ("gim", cp.GIM(causal="linear", seed=0, steps=200))]:
        model.fit(train, progress=False)
        path = tmp_path_factory.mktemp(name) / "model"
        model.save(path)
        out[name] = (model, cp.PerturbationModel.load(path))
    return out


@pytest.mark.parametrize("name", ["additive", "gim"])
def test_loaded_model_predicts_new_smiles(name, fitted, sci):
    model, loaded = fitted[name]
    assert loaded.featurizer_ == model.featurizer_ == cp.pp.SmilesFeaturizer()
    assert loaded.feature_source_ == "uns" and loaded.feature_table_.shape == (8, 2048)
    ood = sci.uns["split_info"]["full_ood_drugs"][0]
    new = [ASPIRIN, CAFFEINE, DRUGS[ood]]  # never seen in training
    pred = loaded.predict(smiles=new, doses=[0.25, 0.5, 1.0], n_cells=40, seed=1)
    assert pred.shape == (120, 30) and list(pred.var_names) == list(sci.var_names)
    assert np.isfinite(pred.X).all() and pred.X.dtype == np.float32
    assert list(pred.obs["perturbation"].astype(str).unique()) == new
    assert sorted(pred.obs["dose"].unique()) == [0.25, 0.5, 1.0]
    ref = model.predict(smiles=new, doses=[0.25, 0.5, 1.0], n_cells=40, seed=1)
    np.testing.assert_allclose(pred.X, ref.X, rtol=1e-5, atol=1e-5)  # the round trip
    ctrl = sci[sci.obs["perturbation"] == "control"].X
    assert np.abs(pred.X.mean(0) - ctrl.mean(0)).max() < 5 * ctrl.std(0).max()  # plausible


@pytest.mark.parametrize("name", ["additive", "gim"])
def test_a_known_molecule_by_smiles_equals_by_name(name, fitted, sci):
    _, loaded = fitted[name]
    ood = sci.uns["split_info"]["full_ood_drugs"][0]
    seen = sorted(set(sci.obs.loc[sci.obs["split"] == "train", "perturbation"]) - {"control"})
    for drug in (seen[0], ood):
        by_name = loaded.predict([drug], 0.75, n_cells=30, seed=2)
        by_smiles = loaded.predict(smiles=[DRUGS[drug]], doses=0.75, n_cells=30, seed=2)
        np.testing.assert_array_equal(by_smiles.X, by_name.X)
        assert (by_smiles.obs["perturbation"] == DRUGS[drug]).all()
        scores = loaded.target_probabilities(smiles=[DRUGS[drug]])
        assert list(scores.index) == [DRUGS[drug]]
        np.testing.assert_array_equal(scores.to_numpy(),
                                      loaded.target_probabilities([drug]).to_numpy())
        if name == "gim":
            eff = loaded.effects(smiles=[DRUGS[drug]], doses=0.75)
            assert list(eff.index) == [DRUGS[drug]]
            np.testing.assert_array_equal(eff.to_numpy(), loaded.effects([drug], 0.75).to_numpy())
    with pytest.raises(ValueError, match=r"^invalid SMILES 'not-a-molecule'"):
        loaded.predict(smiles=["not-a-molecule"])
    with pytest.raises(ValueError, match=r"^pass either perturbation names .* or smiles=, not"):
        loaded.predict([seen[0]], smiles=[ASPIRIN])
    with pytest.raises(ValueError, match=r"^pass the perturbations to predict \(names\) or "):
        loaded.predict()


def test_featurizer_argument_featurises_uns_smiles(raw):
    sci = read_sciplex3(raw, n_genes=20, fingerprints=False)
    assert "featurizer" not in sci.uns and "perturbation_features" not in sci.uns
    train = sci[sci.obs["split"] == "train"].copy()
    plain = cp.MODELS["additive"]().fit(train)
    assert plain.featurizer_ is None and plain.feature_source_ == "one-hot"
    with pytest.raises(ValueError, match=r"^this model was fitted without a SMILES featurizer; "):
        plain.predict(smiles=[ASPIRIN])
    model = cp.MODELS["additive"]().fit(train, featurizer=cp.pp.SmilesFeaturizer(n_bits=256))
    assert model.feature_table_.shape == (8, 256)
    assert model.predict(smiles=ASPIRIN, n_cells=5).shape == (5, 20)
    train.uns["perturbation_features"] = cp.pp.featurize_smiles(train.uns["smiles"], n_bits=64)
    with pytest.raises(ValueError, match=r"^the feature table has 64 columns but the featurizer "
                                         "gives n_bits=256"):
        cp.MODELS["additive"]().fit(train, featurizer={"kind": "morgan", "n_bits": 256})


def test_checkpoints_without_featurizer_still_load(fitted, tmp_path):
    model, _ = fitted["additive"]
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["featurizer"] == {"kind": "morgan", "radius": 2, "n_bits": 2048}
    assert meta["smiles"].keys() == DRUGS.keys()
    del meta["featurizer"], meta["smiles"]
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    old = cp.PerturbationModel.load(tmp_path / "m")
    assert old.featurizer_ is None and old.known_smiles_ == {}
    assert old.predict(["Dasatinib"], 0.5, n_cells=3).shape == (3, 30)


def test_docstring_examples_run():
    import causalpert.data.smiles as smiles

    result = doctest.testmod(smiles, verbose=False)
    assert result.attempted > 0 and result.failed == 0
