"""Tests for the bundled Sachs et al. (2005) dataset loader."""

from __future__ import annotations

import doctest
import gzip
import importlib.resources

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import causalpert.data.datasets as datasets
from causalpert.data.datasets import sachs

# Published sizes of the 9 original condition files, in file (= row) order.
CONDITIONS = {
    "cd3cd28": 853,
    "cd3cd28icam2": 902,
    "cd3cd28+aktinhib": 911,
    "cd3cd28+g0076": 723,
    "cd3cd28+psitect": 810,
    "cd3cd28+u0126": 799,
    "cd3cd28+ly": 848,
    "pma": 913,
    "b2camp": 707,
}


@pytest.fixture(scope="module")
def adata():
    return sachs()


def test_shape_names_and_dtypes(adata):
    assert adata.shape == (7466, 11)
    assert list(adata.var_names) == [
        "praf", "pmek", "plcg", "PIP2", "PIP3", "p44/42",
        "pakts473", "PKA", "PKC", "P38", "pjnk",
    ]  # fmt: skip
    assert adata.obs_names.is_unique
    assert adata.obs_names[0] == "cell_0" and adata.obs_names[-1] == "cell_7465"
    assert adata.X.dtype == np.float32 and adata.layers["raw"].dtype == np.float32


def test_conditions_in_file_order_with_published_sizes(adata):
    pert = adata.obs["perturbation"]
    assert isinstance(pert.dtype, pd.CategoricalDtype)
    assert list(pert.cat.categories) == list(CONDITIONS)
    # contiguous blocks, in order, with the published sizes
    runs = pert.astype(str).to_numpy()
    starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
    sizes = np.diff(np.r_[starts, len(runs)])
    assert list(runs[starts]) == list(CONDITIONS)
    assert sizes.tolist() == list(CONDITIONS.values())
    assert adata.uns["control"] == "cd3cd28" == runs[0]


def test_x_is_log1p_of_raw(adata):
    raw = adata.layers["raw"]
    assert np.isfinite(raw).all() and (raw > 0).all()
    np.testing.assert_allclose(adata.X, np.log1p(raw), rtol=1e-6, atol=0)


def test_raw_sum_per_condition_finite_positive(adata):
    sums = (
        pd.DataFrame(adata.layers["raw"], index=adata.obs["perturbation"].to_numpy())
        .groupby(level=0, sort=False)
        .sum()
    )
    assert list(sums.index) == list(CONDITIONS)
    assert np.isfinite(sums.to_numpy()).all() and (sums.to_numpy() > 0).all()


def test_condition_boundaries_are_change_points(adata):
    # Mean shift (standardised log values) between the w rows before and after each row t.
    # Every condition boundary must be a larger shift than any position >= w rows away
    # from all boundaries, i.e. the labels sit exactly where the data changes regime.
    w = 200
    x = np.asarray(adata.X, dtype=np.float64)
    x = (x - x.mean(0)) / x.std(0)
    c = np.vstack([np.zeros(x.shape[1]), np.cumsum(x, axis=0)])
    t = np.arange(w, len(x) - w + 1)
    shift = np.linalg.norm((c[t] - c[t - w]) - (c[t + w] - c[t]), axis=1) / w
    bounds = np.cumsum(list(CONDITIONS.values()))[:-1]
    inside = np.min(np.abs(t[:, None] - bounds[None, :]), axis=1) >= w
    at_bounds = shift[bounds - w]
    assert (at_bounds > shift[inside].max()).all(), (at_bounds, shift[inside].max())


def test_consensus_graph(adata):
    g = adata.uns["consensus_graph"]
    assert g.dtype == np.int8 and g.shape == (11, 11)
    assert set(np.unique(g)) <= {0, 1}
    assert int(g.sum()) == 17 and not np.diag(g).any()
    names = list(adata.var_names)
    edges = {f"{names[i]}->{names[j]}" for i, j in zip(*np.nonzero(g), strict=True)}
    assert edges == set(adata.uns["consensus_edges"])
    assert {"praf->pmek", "pmek->p44/42", "PIP3->PIP2", "PKA->P38"} <= edges


def test_intended_targets(adata):
    targets = adata.uns["intended_targets"]
    assert set(targets) == set(CONDITIONS)
    assert targets["cd3cd28"] == "" and targets["cd3cd28icam2"] == ""
    assigned = {k: v for k, v in targets.items() if v}
    assert len(assigned) == 7
    assert set(assigned.values()) <= set(adata.var_names)
    assert targets["cd3cd28+u0126"] == "pmek" and targets["b2camp"] == "PKA"


def test_dose_and_metadata(adata):
    assert (adata.obs["dose"].to_numpy() == 1.0).all()
    assert adata.uns["dataset"] == "sachs2005"
    assert "cyto_full_data.csv" in adata.uns["provenance"]


def test_h5ad_roundtrip(adata, tmp_path):
    path = tmp_path / "sachs.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.layers["raw"], adata.layers["raw"])
    assert back.uns["intended_targets"] == adata.uns["intended_targets"]
    np.testing.assert_array_equal(back.uns["consensus_graph"], adata.uns["consensus_graph"])


def test_bundled_file_is_plain_gzip_csv():
    resource = importlib.resources.files("causalpert.data") / "files" / "sachs2005.csv.gz"
    with resource.open("rb") as fh, gzip.open(fh, "rt") as text:
        header = text.readline().strip()
    assert header.split(",")[0] == "condition"


def test_corrupt_file_gives_one_line_error(monkeypatch):
    bad = pd.DataFrame({"condition": ["cd3cd28"], "praf": [1.0]})
    monkeypatch.setattr(datasets.pd, "read_csv", lambda *a, **k: bad)
    with pytest.raises(RuntimeError, match=r"corrupt \(expected 7466 × 12.*reinstall") as err:
        sachs()
    assert "\n" not in str(err.value)


def test_missing_file_gives_one_line_error(monkeypatch):
    monkeypatch.setattr(datasets, "_SACHS_FILE", "absent.csv.gz")
    with pytest.raises(RuntimeError, match=r"^bundled absent.csv.gz is missing: reinstall"):
        sachs()


def test_docstring_examples_run():
    result = doctest.testmod(datasets, verbose=False)
    assert result.attempted > 0 and result.failed == 0
