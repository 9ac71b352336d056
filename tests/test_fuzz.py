"""Fuzzed AnnData inputs to ``fit`` / ``predict`` of cheap models and to the CLI, and fuzzed
arguments of ``predict``.

Properties: an input the docs accept fits and predicts finite cells; any other input fails with
a one-line ``ValueError`` that says what to do (the CLI: exit code 1, one line, no traceback,
no output file left behind), never an internal exception (IndexError, KeyError, torch's
RuntimeError, ...). Seeded (``derandomize``) so that CI sees the same examples every run.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from causalpert.cli import app
from causalpert.models import MODELS

#: cheap settings: every fit takes well under a second
FAST = {
    "control": {}, "additive": {}, "mean-shift": {}, "de": {},
    "gim": {"steps": 3, "refit_steps": 2, "batch_contexts": 2, "cells_per_context": 4,
            "control_cells": 8, "evidence_cells": 8},
}
#: perturbation labels: unicode, a '+' name, digits, empty and blank
LABELS = ["a", "drug-β", "нокаут", "a+b", "7", "", " "]
#: gene names: unicode, blank, digits (fault "duplicate genes" repeats the first)
GENES = ["g0", "γ-gene", "基因", "gene 3"]
#: a message that says what to do contains one of these verbs
FIX = re.compile(r"\b(pass|drop|remove|store|label|fill|give|run|choose|add|use|impute|"
                 r"write|fit|refit|rescale)\b")
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


#: one way (at most) in which an input breaks the documented rules; "none" the most often
FAULTS = ["none"] * 16 + [
    "no genes", "no cells", "duplicate genes", "missing label", "missing key", "no control",
    "one control cell", "one-cell context", "only control", "nan", "inf", "huge", "dose nan",
    "dose negative", "dose text", "dose missing"]


@st.composite
def cells(draw):
    """(adata, fit keyword arguments, whether the input is valid by the documented rules):
    valid data (dtypes, sparse formats, label and dose encodings, unicode names, constant
    genes) with at most one fault from ``FAULTS``."""
    fault = draw(st.sampled_from(FAULTS))
    n_genes = 0 if fault == "no genes" else draw(st.integers(1, 4))
    genes = list(GENES[:n_genes])
    if fault == "duplicate genes":
        genes = [*GENES[: n_genes], GENES[0]] if n_genes == 1 else [*genes[:-1], genes[0]]
        n_genes = len(genes)
    n_ctrl = {"one control cell": 1, "no cells": 0}.get(fault, draw(st.integers(2, 4)))
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=3, unique=True))
    sizes = [draw(st.integers(2, 3)) for _ in labels]
    if fault == "one-cell context":
        sizes[-1] = 1
    if fault in ("only control", "no cells"):
        sizes = [0] * len(labels)
    pert = np.array(["control"] * n_ctrl + [p for p, k in zip(labels, sizes, strict=True)
                                           for _ in range(k)], dtype=object)
    n = len(pert)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    at = draw(st.integers(0, 10**6))  # where a fault goes: cell (at % n)

    dtype = draw(st.sampled_from(["float32", "float64", "float16", "int64", "int32", "uint8",
                                  "bool"]))
    if fault in ("nan", "inf", "huge"):
        dtype = "float64"
    if dtype == "bool":
        x = rng.random((n, n_genes)) < 0.5
    elif dtype[0] in "iu":
        x = rng.poisson(2.0, (n, n_genes)).astype(dtype)
    else:
        x = (rng.normal(size=(n, n_genes)) * draw(st.sampled_from([1.0, 1e-6, 1e4]))
             ).astype(dtype)
    constant = [j for j in range(n_genes) if draw(st.booleans())]  # zero-variance genes
    if n:
        x[:, constant] = x[:1, constant]
    if n and n_genes and fault in ("nan", "inf", "huge"):
        x[at % n, at % n_genes] = {"nan": np.nan, "inf": -np.inf, "huge": 1e39}[fault]
    fmt = draw(st.sampled_from(["dense", "csr", "csc"]))
    if fmt != "dense" and dtype != "float16":  # scipy has no float16 sparse matrices
        x = sp.csr_matrix(x) if fmt == "csr" else sp.csc_matrix(x)

    # how the perturbation column stores the labels
    control = "DMSO" if fault == "no control" else "control"
    kind = draw(st.sampled_from(["str", "category", "int"]))
    column = pert.copy()
    if kind == "category":  # with categories no cell uses
        column = pd.Categorical(pert, categories=[*dict.fromkeys(pert), "unused", "control2"])
    elif kind == "int":  # codes, control = 0
        codes = {p: i for i, p in enumerate(dict.fromkeys(["control", *pert]))}
        column = np.array([codes[p] for p in pert], dtype=np.int64)
        control = "0" if control == "control" else control
    if fault == "missing label" and n:  # as h5ad stores it: float codes or strings with NaN
        column = (column.astype(float) if kind == "int"
                  else pd.Series(column).astype(object).to_numpy())
        column[at % n] = np.nan
    is_ctrl = pert == "control"
    dose_kind = {"dose text": "text", "dose missing": "missing", "dose nan": "ones",
                 "dose negative": "ones"}.get(
        fault, draw(st.sampled_from(["ones", "none", "pairs", "int", "nan-control"])))
    dose = np.ones(n)
    if dose_kind == "pairs":  # two doses, two cells each
        dose = np.where(np.arange(n) % 4 < 2, 1.0, 2.0)
    elif dose_kind == "nan-control":
        dose[is_ctrl] = np.nan  # control doses are ignored
    if fault in ("dose nan", "dose negative") and (~is_ctrl).any():
        dose[np.flatnonzero(~is_ctrl)[at % (~is_ctrl).sum()]] = (
            np.nan if fault == "dose nan" else -1.0)
    obs = pd.DataFrame({"perturbation": column}, index=[f"c{i}" for i in range(n)])
    if dose_kind == "int":
        obs["dose"] = np.ones(n, dtype=np.int64)
    elif dose_kind == "text":
        obs["dose"] = np.array(["high"] * n, dtype=object)
    elif dose_kind not in ("missing", "none"):
        obs["dose"] = dose
    if fault == "missing key":
        obs = obs.rename(columns={"perturbation": "condition"})
    kwargs = {"perturbation_key": "perturbation", "control": control,
              "dose_key": None if dose_kind == "none" else "dose"}
    with warnings.catch_warnings():  # duplicate gene names warn; prepare must refuse them
        warnings.simplefilter("ignore")
        adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=genes))

    # the documented rules (prepare's docstring), checked on the data as made
    eff_dose = np.where(is_ctrl, 0.0, 1.0 if dose_kind == "none" else dose)
    sizes = pd.Series(list(zip(pert, eff_dose, strict=True))).value_counts()
    valid = (n_genes > 0 and n > 0 and len(set(genes)) == n_genes and fault != "missing key"
             and not (fault == "missing label" and n) and fault != "no control"
             and fault not in ("nan", "inf", "huge") and dose_kind not in ("text", "missing")
             and bool(np.isfinite(eff_dose).all() and (eff_dose >= 0).all())
             and bool((sizes >= 2).all()))
    note(f"fault {fault}; {dtype} {fmt} x={x!r}; labels {kind} {list(pert)}; dose "
         f"{dose_kind} {list(dose)}; genes {genes}; {kwargs}; valid={valid}")
    return adata, kwargs, valid


def _one_line_fix(msg: str) -> None:
    assert msg and "\n" not in msg, msg
    assert FIX.search(msg), f"the message does not say what to do: {msg}"


def _perturbed(adata, kwargs) -> int:
    pert = adata.obs[kwargs["perturbation_key"]].astype(str)
    return int((pert != kwargs["control"]).sum())


@pytest.mark.parametrize("name", sorted(FAST))
@FUZZ
@given(case=cells())
def test_fit_predict_fuzzed(name, case):
    adata, kwargs, valid = case
    model = MODELS[name](seed=0, **FAST[name])
    try:
        model.fit(adata, progress=False, **kwargs)
    except ValueError as err:
        event(f"ValueError: {str(err).split(':')[0][:40]}")
        _one_line_fix(str(err))
        # only the control baseline fits control cells alone
        assert not valid or (name != "control" and _perturbed(adata, kwargs) == 0), err
        return
    assert valid, "fit accepted an input the docs reject"
    event("fitted")
    seen = list(model.feature_table_.index)
    if name == "de":
        scores = model.target_probabilities()
        assert scores.shape == (len(seen), adata.n_vars) and np.isfinite(scores).all().all()
        return
    if not seen:
        return
    pred = model.predict(seen, n_cells=3)
    assert pred.shape == (3 * len(seen), adata.n_vars)
    assert np.isfinite(pred.X).all() and list(pred.var_names) == list(model.genes_)


runner = CliRunner()
CLI_FUZZ = settings(FUZZ, max_examples=60)


def _cli_error(res) -> str:
    """The output of a failed command: exit code 1, one line 'error: ...' that says what to do,
    no traceback (an exception the CLI does not catch is a bug)."""
    assert not isinstance(res.exception, Exception), res.exception
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), res.output
    _one_line_fix(lines[0])
    return lines[0]


@pytest.mark.filterwarnings("ignore:Variable names are not unique")
@pytest.mark.parametrize("name", ["control", "additive", "gim"])
@CLI_FUZZ
@given(case=cells())
def test_cli_fit_predict_fuzzed(name, case):
    adata, kwargs, valid = case
    with tempfile.TemporaryDirectory() as tmp:
        data, model, pred = (Path(tmp, f) for f in ("cells.h5ad", "model", "pred.h5ad"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adata.write_h5ad(data)
        args = ["fit", str(data), "--out", str(model), "--model", name, "--control",
                kwargs["control"], "--dose-key", kwargs["dose_key"] or "none"]
        res = runner.invoke(app, args + (["--steps", "3", "--refit-steps", "2"]
                                         if name == "gim" else []))
        if res.exit_code != 0:
            event(f"error: {_cli_error(res)[7:].split(':')[0][:40]}")
            assert not model.exists()
            assert not valid or (name != "control" and _perturbed(adata, kwargs) == 0)
            return
        assert valid, "fit accepted an input the docs reject"
        event("fitted")
        seen = [p for p in dict.fromkeys(adata.obs["perturbation"].astype(str))
                if p != kwargs["control"]]
        res = runner.invoke(app, ["predict", str(model), *(a for p in seen[:2] for a in (
            "--perturbation", p)), "--n-cells", "3", "--out", str(pred)])
        if not seen:  # the control baseline fitted on control cells alone
            assert "give --perturbation NAME" in _cli_error(res) and not pred.exists()
            return
        assert res.exit_code == 0, res.output
        out = ad.read_h5ad(pred)
        assert out.shape == (3 * len(seen[:2]), adata.n_vars) and np.isfinite(out.X).all()
        assert list(out.obs["perturbation"].cat.categories) == sorted(seen[:2])
        if name != "control":  # which predicts control cells for any name
            pred.unlink()
            res = runner.invoke(app, ["predict", str(model), "--perturbation", "never seen",
                                      "--out", str(pred)])
            assert "unknown perturbation 'never seen'" in _cli_error(res) and not pred.exists()


@pytest.fixture(scope="module")
def fitted():
    """One small fit per model on valid cells (two perturbations, two doses)."""
    rng = np.random.default_rng(0)
    pert = ["control"] * 6 + ["a"] * 4 + ["drug-β"] * 4
    obs = pd.DataFrame({"perturbation": pert, "dose": [0] * 6 + [1, 1, 2, 2] * 2},
                       index=[f"c{i}" for i in range(14)])
    adata = ad.AnnData(rng.normal(size=(14, 3)).astype(np.float32), obs=obs,
                       var=pd.DataFrame(index=GENES[:3]))
    return {name: MODELS[name](seed=0, **FAST[name]).fit(adata, progress=False)
            for name in ("control", "additive", "mean-shift", "gim")}


@pytest.mark.parametrize("name", ["control", "additive", "mean-shift", "gim"])
@settings(FUZZ, max_examples=100)
@given(names=st.lists(st.sampled_from(["a", "drug-β", "a+drug-β", "g0", "", "nope", 7]),
                      max_size=3),
       doses=st.one_of(st.sampled_from([1.0, 0.0, 2.5, -1.0, np.nan, np.inf, "high"]),
                       st.lists(st.sampled_from([0.5, 1.0, np.nan]), max_size=4)),
       n_cells=st.sampled_from([1, 3, 0, -2]),
       mode=st.sampled_from(["map", "mean", "sample", "best"]))
def test_predict_arguments_fuzzed(fitted, name, names, doses, n_cells, mode):
    try:
        pred = fitted[name].predict(names, doses, n_cells=n_cells, mode=mode)
    except ValueError as err:
        event(f"ValueError: {str(err).split(':')[0][:40]}")
        _one_line_fix(str(err))
        return
    event("predicted")
    assert pred.shape == (n_cells * len(names), 3) and np.isfinite(pred.X).all()
    assert list(pred.obs["perturbation"].astype(str)) == [str(p) for p in names
                                                         for _ in range(n_cells)]
