"""Protocols sachs and sciplex3 through the runner: splits, the fits they score, the metrics."""

import sys
from pathlib import Path

import numpy as np
import pytest

from causalpert.benchmark.protocols import load_protocol
from causalpert.benchmark.runner import run_benchmark
from causalpert.metrics import target_rank


def test_target_rank_counts_better_genes_and_averages_ties():
    assert target_rank([0.1, 0.9, 0.5], 1) == 1.0
    assert target_rank([0.1, 0.9, 0.5], 0) == 3.0
    assert target_rank([0.5, 0.5, 0.9, 0.5], 0) == 3.0  # rank 2..4 tied → 3
    with pytest.raises(ValueError, match="out of range"):
        target_rank([0.1, 0.2], 5)


def test_sachs_protocol_splits():
    data = load_protocol("sachs", seed=0)
    sizes = data.tests["id"].obs["perturbation"].value_counts()
    assert "cd3cd28" not in sizes[sizes > 0].index  # control stays in training
    assert sizes["cd3cd28+u0126"] == round(0.2 * 799)
    assert data.train.n_obs + data.tests["id"].n_obs == data.fit_all.n_obs == 7466
    assert len(data.intended_targets) == 7 and data.truth_targets.to_numpy().sum() == 7
    assert data.true_graph.sum() == 17


def test_sachs_benchmark_scores_id_targets_and_graph(tmp_path):
    results, summary = run_benchmark(
        protocol="sachs", sim="linear", methods=["de", "additive", "free-causal"], seeds=[0],
        out=tmp_path, progress=False, overrides={"free-causal": {"steps": 30}})
    s = summary.set_index(["method", "split", "metric"])
    assert s.loc[("additive", "id", "edist_rel"), "mean"] < 0.5
    ranks = results.query("method == 'de' and metric == 'target_rank'")
    assert len(ranks) == 7 and ranks["value"].between(1, 11).all()
    # a mean-shift ranking puts only psitectorigenin's and U0126's targets in its top 2
    top2 = set(results.query("method == 'de' and metric == 'target_top2' and value == 1")
               ["context"])
    assert top2 == {"cd3cd28+psitect", "cd3cd28+u0126"}
    assert ("free-causal", "graph", "graph_auprc") in s.index
    assert ("free-causal", "train", "fit_all_seconds") in s.index


def test_sciplex3_protocol_runs_on_the_fixture(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    from sciplex3_fixture import make_sciplex3

    path = tmp_path / "sciplex3.h5ad"
    make_sciplex3().write_h5ad(path)
    results, summary = run_benchmark(
        protocol="sciplex3", sim="linear", methods=["control", "additive"], seeds=[0],
        out=tmp_path / "run", progress=False, data=str(path))
    splits = set(results["split"])
    assert {"partial_ood", "full_ood"} <= splits
    s = summary.set_index(["method", "split", "metric"])["mean"]
    assert np.isfinite(s.to_numpy()).all()
    # a held-out dose of seen drugs: the ridge on (features, dose) beats "no effect"; new drugs
    # from 2,048 fingerprint bits and 6 training drugs are not expected to
    assert s[("additive", "partial_ood", "edist")] < s[("control", "partial_ood", "edist")]
    with pytest.raises(ValueError, match="needs the h5ad file"):
        load_protocol("sciplex3", seed=0)


def test_activity_synthetic_scores_targets_by_intervention_kind():
    pdata = load_protocol("activity-synthetic", sim="linear", seed=0)
    sets = pdata.target_sets
    assert sorted(sets["id_activity"] + sets["id_shift"]) == sorted(sets["id"])
    kappa = pdata.train.uns["truth"]["activity"]
    assert (kappa.loc[sets["id_activity"]].abs().sum(1) > 0).all()
    assert (kappa.loc[sets["id_shift"]].abs().sum(1) == 0).all()
    assert len(sets["id_activity"]) >= 10 and len(sets["id_shift"]) >= 10
