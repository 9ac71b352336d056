"""``prepare``: every bad input gets a one-line error saying what to fix; sparse and integer
matrices are accepted and become the same float32 contexts as dense float ones."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from causalpert.data.contexts import float32_rows
from causalpert.data.features import resolve_features
from causalpert.data.prepare import dense_matrix, expression_matrix, prepare


def _adata(x=None):
    pert = ["control"] * 4 + ["a"] * 3 + ["b"] * 3 + ["a"] * 2
    dose = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
    x = np.arange(36, dtype=np.float32).reshape(12, 3) if x is None else x
    obs = pd.DataFrame({"perturbation": pert, "dose": dose}, index=[f"c{i}" for i in range(12)])
    return ad.AnnData(x, obs=obs, var=pd.DataFrame(index=["g0", "g1", "g2"]))


def _with_nan(adata):
    adata.X[5, 1] = np.inf
    adata.X[6, 0] = np.nan
    return adata


def _beyond_float32(adata):
    adata.X = adata.X.astype(np.float64)
    adata.X[3, 0] = -1e39  # finite in float64, inf once fitted in float32
    return adata


def _sparse_nan(adata):
    x = sp.csr_matrix(adata.X)
    x.data[3] = np.nan
    adata.X = x
    return adata


def _set_obs(key, value):
    def change(adata):
        adata.obs[key] = value
        return adata
    return change


def _single_cell_context(adata):
    adata.obs.loc["c9", "perturbation"] = "c"
    return adata


def _dup_genes(adata):
    adata.var_names = ["g0", "g1", "g0"]
    return adata


def _no_x(adata):
    adata.X = None
    return adata


def _strings(adata):
    return ad.AnnData(adata.X.astype(str).astype(object), obs=adata.obs, var=adata.var)


BAD = {
    "missing obs key": (lambda a: a, {"perturbation_key": "drug"},
                        r"^obs key 'drug' not found: pass perturbation_key= one of the obs "
                        r"columns \['perturbation', 'dose'\]"),
    "missing dose key": (lambda a: a, {"dose_key": "conc"}, r"^obs key 'conc' not found"),
    "no control cells": (lambda a: a, {"control": "DMSO"},
                         r"^no control cells: .*pass control=<your control label>$"),
    "context < 2 cells": (_single_cell_context, {},
                          r"^1 context\(s\) have fewer than 2 cells, e.g. 'c' at dose 2 \(1 cell\)"
                          r".*drop those cells or pool their doses$"),
    "NaN/inf dense": (_with_nan, {}, r"^2 cells have NaN or inf values in adata.X: remove or "
                                     "impute them first$"),
    "NaN sparse": (_sparse_nan, {}, r"^1 cells have NaN or inf values in adata.X"),
    "beyond float32": (_beyond_float32, {}, r"^1 cells have values beyond ±3.4e\+38 \(the "
                                            r"float32 range\) in adata.X: rescale them first$"),
    "negative dose": (_set_obs("dose", [0] * 4 + [-1.0] * 8), {},
                      r"^obs\['dose'\] has 8 negative value\(s\) \(min -1\): give finite doses "
                      "≥ 0$"),
    "NaN dose": (_set_obs("dose", [0] * 4 + [np.nan] + [1.0] * 7), {},
                 r"^obs\['dose'\] has 1 NaN or inf value\(s\) in perturbed cells: doses must be "
                 "finite; fill or drop those cells$"),
    "inf dose": (_set_obs("dose", [0] * 4 + [np.inf] + [1.0] * 7), {}, r"1 NaN or inf value"),
    "text dose": (_set_obs("dose", ["low"] * 12), {},
                  r"^obs\['dose'\] must be numeric, got values such as 'low': store doses as"),
    "duplicate genes": (_dup_genes, {}, r"^duplicate gene name 'g0': run "
                                        r"adata.var_names_make_unique\(\)$"),
    "missing layer": (lambda a: a, {"layer": "counts"},
                      r"^layer 'counts' not in adata.layers \[\]: pass one of them"),
    "empty X": (_no_x, {}, r"^adata.X is empty: store the expression matrix in X or pass layer="),
    "text matrix": (_strings, {}, r"^adata.X must be a 2-D numeric matrix, got dtype object"),
    "missing label": (_set_obs("perturbation", ["control"] * 4 + [None] + ["a"] * 7), {},
                      r"^obs\['perturbation'\] has 1 missing label\(s\): label or drop those"),
    "no cells": (lambda a: a[:0].copy(), {}, r"^adata has shape \(0, 3\): pass cells × genes"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gives_one_line_error(case):
    change, kwargs, message = BAD[case]
    with pytest.raises(ValueError, match=message) as err:
        prepare(change(_adata()), **kwargs)
    assert "\n" not in str(err.value)


def test_control_doses_are_ignored():
    adata = _set_obs("dose", [np.nan, -1, 0, 5] + [1.0] * 8)(_adata())
    ctx = prepare(adata)
    assert ctx.perturbations == ("control", "a", "b")
    assert ctx.doses.tolist() == [0.0, 1.0, 1.0]


def test_features_missing_for_a_perturbation():
    adata = _adata()
    table = pd.DataFrame({"f": [1.0]}, index=["a"])
    with pytest.raises(ValueError, match=r"^features missing for 1 perturbation\(s\), e.g. "
                                         r"\['b'\]: add rows for them to the feature table$"):
        resolve_features(adata, table, ["a", "b"])
    adata.uns["perturbation_features"] = pd.DataFrame({"f": [1.0, np.nan]}, index=["a", "b"])
    with pytest.raises(ValueError, match=r"^perturbation features contain NaN or inf"):
        resolve_features(adata, None, ["a", "b"])


@pytest.mark.parametrize("fmt", ["csr", "csc", "int-dense", "int-csr", "float64"])
def test_sparse_and_integer_matrices_give_the_same_float32_contexts(fmt):
    ref = prepare(_adata())
    x = np.arange(36).reshape(12, 3)
    x = {"csr": sp.csr_matrix(x, dtype=np.float32), "csc": sp.csc_matrix(x, dtype=np.float32),
         "int-dense": x, "int-csr": sp.csr_matrix(x),
         "float64": x.astype(np.float64)}[fmt]
    ctx = prepare(_adata(x))
    assert ctx.x.dtype == ref.x.dtype and ctx.x.dtype.is_floating_point
    assert str(ctx.x.dtype) == "torch.float32"
    assert ctx.x.tolist() == ref.x.tolist() and ctx.perturbations == ref.perturbations


def test_layers_and_sparse_matrices_stay_sparse_until_grouping():
    adata = _adata()
    adata.layers["counts"] = sp.csc_matrix(np.ones((12, 3), dtype=np.int32))
    x = expression_matrix(adata, layer="counts")
    assert sp.issparse(x) and x.format == "csr" and x.dtype == np.int32  # checked, not copied
    assert dense_matrix(adata, layer="counts").dtype == np.float32
    assert prepare(adata, layer="counts").x.sum() == 36


def test_float32_rows_converts_in_blocks():
    x = sp.random(1000, 7, density=0.3, format="csr", random_state=0)
    rows = np.random.default_rng(0).permutation(1000)
    out = float32_rows(x, rows, chunk=64)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x.toarray()[rows].astype(np.float32))
    dense = np.ones((4, 2), dtype=np.float32)
    assert float32_rows(dense) is dense  # already float32: no copy
