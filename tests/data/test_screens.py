"""Tests for the bundled CRISPR screens: Papalexi et al. (2021) and Norman et al. (2019)."""

from __future__ import annotations

import doctest

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import causalpert.data.screens as screens
from causalpert.data.screens import norman2019, papalexi2021, papalexi_genes

MEASURED = ["CMTM6", "IFNGR2", "JAK2", "NFKBIA", "STAT1", "STAT2", "STAT3", "TNFRSF14", "UBE2L6"]
COMBO_PAIRS = ["KLF1+MAP2K6", "KLF1+TGFBR2", "MAP2K3+MAP2K6", "MAP2K3+SLC38A2", "MAPK1+TGFBR2"]


@pytest.fixture(scope="module")
def pap():
    return papalexi2021()


@pytest.fixture(scope="module")
def norman():
    return norman2019()


def _dense(m) -> np.ndarray:
    return m.toarray() if sp.issparse(m) else np.asarray(m)


# --- papalexi2021 -------------------------------------------------------------------------


def test_papalexi_shape_and_purity_filter(pap):
    assert pap.shape == (16093, 299)
    assert (pap.obs["guide_fraction"] > 0.8).all()
    assert int((pap.obs["perturbation"] == "control").sum()) == 1912
    assert papalexi2021(min_guide_fraction=0.0).n_obs == 20729
    assert pap.X.dtype == np.float32
    assert pap.layers["counts"].dtype == np.float32


def test_papalexi_obs_and_uns(pap):
    perts = set(pap.obs["perturbation"].astype(str))
    assert len(perts) == 26 and "control" in perts and "non-targeting" not in perts
    targets = pap.uns["intended_targets"]
    assert len(targets) == 26 and targets["control"] == ""
    assert all(targets[p] == p for p in perts - {"control"})
    assert pap.uns["measured_targets"] == MEASURED
    assert pap.uns["control"] == "control"
    assert pap.uns["dataset"] == "papalexi2021"
    assert "\n" not in pap.uns["provenance"]
    assert set(pap.obs["replicate"].astype(str)) == {"rep_1", "rep_2", "rep_3"}
    assert (pap.obs["dose"] == 1.0).all()
    ctrl_guides = pap.obs.loc[pap.obs["perturbation"] == "control", "guide"].astype(str)
    assert ctrl_guides.str.startswith("NTg").all()
    stat1_guides = pap.obs.loc[pap.obs["perturbation"] == "STAT1", "guide"].astype(str)
    assert stat1_guides.str.startswith("STAT1g").all()


def test_papalexi_stat1_knockout_lowers_stat1(pap):
    j = list(pap.var_names).index("STAT1")
    counts = _dense(pap.layers["counts"][:, j]).ravel()
    pert = pap.obs["perturbation"].to_numpy()
    ko, ctrl = counts[pert == "STAT1"].mean(), counts[pert == "control"].mean()
    assert ctrl > 2 * ko


def test_papalexi_x_is_log1p_of_median_scaled_counts(pap):
    counts = pap.layers["counts"]
    lib = np.asarray(counts.sum(axis=1)).ravel()
    median = np.median(lib)
    assert pap.uns["median_library_size"] == pytest.approx(median)
    rows = [0, 1, 500, 8000, pap.n_obs - 1]
    c = _dense(counts[rows]).astype(np.float64)
    expected = np.log1p(c * median / lib[rows, None])
    np.testing.assert_allclose(_dense(pap.X[rows]), expected, rtol=1e-5, atol=1e-6)
    # every cell's scaled counts sum to the median library size
    scaled_sum = np.expm1(_dense(pap.X).astype(np.float64)).sum(axis=1)
    np.testing.assert_allclose(scaled_sum, median, rtol=1e-3)


def test_papalexi_rejects_bad_fraction():
    with pytest.raises(ValueError, match="min_guide_fraction"):
        papalexi2021(min_guide_fraction=1.0)


# --- papalexi_genes -----------------------------------------------------------------------


def test_papalexi_genes_size_and_targets(pap):
    genes = papalexi_genes(pap)
    assert 100 <= len(genes) <= 250
    assert set(MEASURED) <= set(genes)
    order = {g: i for i, g in enumerate(pap.var_names)}
    assert [order[g] for g in genes] == sorted(order[g] for g in genes)


def test_papalexi_genes_uses_control_cells_only(pap):
    genes = papalexi_genes(pap)
    altered = pap.copy()
    counts = altered.layers["counts"].tolil()
    ko = np.flatnonzero((altered.obs["perturbation"] != "control").to_numpy())
    counts[ko, :] = 0.0  # wipe every knockout cell
    altered.layers["counts"] = counts.tocsr()
    assert papalexi_genes(altered) == genes
    counts[ko, :] = 5.0  # every gene detected in every knockout cell
    altered.layers["counts"] = counts.tocsr()
    assert papalexi_genes(altered) == genes


def test_papalexi_genes_threshold(pap):
    assert len(papalexi_genes(pap, min_detected=0.0)) == 299
    assert set(papalexi_genes(pap, min_detected=1.0)) >= set(MEASURED)
    with pytest.raises(ValueError, match="control"):
        papalexi_genes(pap[pap.obs["perturbation"] != "control"])


# --- norman2019 ---------------------------------------------------------------------------


def test_norman_shape_and_labels(norman):
    assert norman.shape == (3375, 500)
    assert norman.X.dtype == np.float32
    perts = set(norman.obs["perturbation"].astype(str)) - {"control"}
    singles = {p for p in perts if "+" not in p}
    pairs = {p for p in perts if "+" in p}
    assert len(singles) == 18 and len(pairs) == 15
    assert int((norman.obs["perturbation"] == "control").sum()) == 100
    for p in pairs:
        a, b = p.split("+")
        assert a and b and "ctrl" not in p.lower()
    assert (norman.obs["dose"] == 1.0).all()


def test_norman_uns(norman):
    assert sorted(norman.uns["combo_test_pairs"]) == COMBO_PAIRS
    assert all(isinstance(p, str) for p in norman.uns["combo_test_pairs"])
    targets = norman.uns["intended_targets"]
    assert targets["control"] == "" and len(targets) == 34
    assert targets["KLF1+MAP2K6"] == "KLF1+MAP2K6"
    assert norman.uns["control"] == "control"
    assert norman.uns["dataset"] == "norman2019"


def test_normalise_combo():
    f = screens._normalise_combo
    assert f("A+ctrl") == "A" and f("ctrl+B") == "B"
    assert f("ctrl") == "control" and f("control") == "control"
    assert f("A + B") == "A+B"


# --- errors and docs ----------------------------------------------------------------------


def test_missing_file_gives_one_line_error(monkeypatch):
    monkeypatch.setattr(screens, "_NORMAN_FILE", "absent.h5ad")
    with pytest.raises(RuntimeError, match=r"^bundled absent.h5ad is missing: reinstall") as err:
        norman2019()
    assert "\n" not in str(err.value)


def test_corrupt_file_gives_one_line_error(monkeypatch):
    def boom(*_a, **_k):
        raise OSError("truncated")

    monkeypatch.setattr(screens.ad, "read_h5ad", boom)
    with pytest.raises(RuntimeError, match=r"corrupt \(OSError\): reinstall") as err:
        papalexi2021()
    assert "\n" not in str(err.value)


def test_wrong_shape_gives_one_line_error(monkeypatch):
    monkeypatch.setattr(screens.ad, "read_h5ad", lambda *_a, **_k: ad.AnnData(np.zeros((3, 4))))
    with pytest.raises(RuntimeError, match=r"corrupt \(expected 500 genes"):
        norman2019()


def test_public_namespace():
    import causalpert.datasets as public

    assert public.papalexi2021 is papalexi2021
    assert public.papalexi_genes is papalexi_genes
    assert public.norman2019 is norman2019


def test_doctests():
    result = doctest.testmod(screens)
    assert result.failed == 0 and result.attempted > 0
