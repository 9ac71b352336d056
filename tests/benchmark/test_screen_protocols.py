"""Protocols papalexi2021 and norman2019 (real CRISPR screens) and the combo split of
paper-synthetic: what each split holds, and the runner's rows for the fast methods."""

import numpy as np
import pandas as pd
import pytest

from causalpert.benchmark.protocols import load_protocol
from causalpert.benchmark.runner import run_one


@pytest.fixture(scope="module")
def papalexi():
    return load_protocol("papalexi2021", seed=0)


def test_papalexi_splits_never_leak(papalexi):
    data = papalexi
    genes = list(data.train.var_names)
    assert 100 <= len(genes) <= 250 and len(data.folds) == 9
    sizes = data.tests["id"].obs["perturbation"].value_counts()
    assert "control" not in sizes[sizes > 0].index
    # targets: opaque labels, no intended targets handed to the fit
    blind = data.fit_all
    assert not any(p in genes for p in blind.obs["perturbation"].astype(str).unique())
    assert data.fit_all_kwargs["intended_targets"] == {}
    assert "intended_targets" not in blind.uns
    assert sorted(data.intended_targets.values()) == sorted(
        ["STAT1", "STAT2", "STAT3", "JAK2", "NFKBIA", "CMTM6", "UBE2L6", "IFNGR2", "TNFRSF14"])
    for fold in data.folds:  # each fold's knockout is absent from its training cells
        assert fold.label not in set(fold.train.obs["perturbation"].astype(str))
        test = fold.tests["unseen_ko"]
        assert set(test.obs["perturbation"].astype(str)) == {fold.label}


def test_papalexi_runner_rows_for_baselines():
    rows = pd.DataFrame(run_one("papalexi2021", "linear", "mean-ko", 0))
    ko = rows[rows["split"] == "unseen_ko"]
    assert set(ko["context"].str.split("@").str[0]) == set(
        load_protocol("papalexi2021", seed=0).intended_targets.values())
    assert {"edist", "mean_rmse", "delta_pearson_top50"} <= set(ko["metric"])
    de = pd.DataFrame(run_one("papalexi2021", "linear", "de", 0))
    top1 = de[(de["split"] == "targets") & (de["metric"] == "target_top1")]
    assert len(top1) == 9 and top1["value"].sum() >= 5  # a mean-shift ranking finds most
    add = pd.DataFrame(run_one("papalexi2021", "linear", "additive", 0))
    assert "unseen_ko" not in set(add["split"])  # one-hot features: cannot predict it


def test_norman_combo_split_and_additive_composition():
    data = load_protocol("norman2019", seed=0)
    pairs = set(data.tests["combo"].obs["perturbation"].astype(str))
    assert len(pairs) == 5
    train = set(data.train.obs["perturbation"].astype(str))
    assert not pairs & train
    assert all(set(p.split("+")) <= train for p in pairs)  # both singles seen
    rows = pd.DataFrame(run_one("norman2019", "linear", "additive", 0))
    combo = rows[(rows["split"] == "combo") & (rows["metric"] == "delta_pearson_top20")]
    assert len(combo) == 5 and combo["value"].mean() > 0.3


def test_paper_synthetic_scores_the_combo_split():
    from causalpert.data import SyntheticDesign

    design = SyntheticDesign(d=6, n_features=8, n_train_perturbations=6, n_ood_perturbations=2,
                             n_control=200, n_test_cells=40, n_combo_pairs=5)
    rows = pd.DataFrame(run_one("paper-synthetic", "linear", "oracle", 0, design=design))
    combo = rows[(rows["split"] == "combo") & (rows["metric"] == "edist_rel")]
    assert len(combo) == 5
    assert np.all(combo["value"] < 0.2)  # the oracle composes the true interventions


def test_condition_variable_genes_picks_the_genes_conditions_move():
    import anndata as ad

    from causalpert.benchmark.protocols import condition_variable_genes

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32) * 0.1
    labels = np.repeat(["control", "a", "b"], 20)
    x[labels == "a", 3] += 5.0
    x[labels == "b", 1] -= 2.0
    adata = ad.AnnData(x, obs=pd.DataFrame({"perturbation": labels},
                                           index=[f"c{i}" for i in range(60)]))
    assert condition_variable_genes(adata, 2) == [adata.var_names[1], adata.var_names[3]]
    assert load_protocol("norman2019", seed=0).train.n_vars == 200
