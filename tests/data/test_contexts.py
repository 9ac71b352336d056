"""Contexts: grouping by (perturbation, dose), invariants, minibatch sampling."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from causalpert.data import Contexts
from causalpert.data.prepare import prepare


def _toy():
    x = np.arange(24, dtype=np.float32).reshape(12, 2)
    pert = ["control"] * 4 + ["a"] * 3 + ["b"] * 3 + ["a"] * 2
    dose = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
    return x, pert, dose


def test_grouping_puts_control_first_and_keeps_rows():
    x, pert, dose = _toy()
    ctx = Contexts.from_arrays(x, pert, dose)
    assert ctx.perturbations == ("control", "a", "a", "b")
    assert ctx.sizes.tolist() == [4, 3, 2, 3]
    assert ctx.doses.tolist() == [0, 1, 2, 2]
    assert ctx.cells(2).tolist() == x[10:12].tolist()  # a at dose 2
    torch.testing.assert_close(ctx.means()[3], torch.tensor(x[7:10].mean(0)))


def test_sampling_draws_distinct_cells_of_the_right_context():
    x = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    pert = ["control"] * 100 + ["a"] * 150 + ["b"] * 50
    ctx = Contexts.from_arrays(x, pert, np.ones(300))
    batch = ctx.sample(torch.tensor([1, 2]), 40, generator=torch.Generator().manual_seed(0))
    assert batch.shape == (2, 40, 3)
    for b, k in enumerate([1, 2]):
        cells = {tuple(r) for r in ctx.cells(k).tolist()}
        drawn = [tuple(r) for r in batch[b].tolist()]
        assert set(drawn) <= cells and len(set(drawn)) == 40  # without replacement


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, p, d: (x, ["a"] * 12, d), "no control cells"),
        (lambda x, p, d: (x, [*p[:-1], "c"], d), "has 1 cell"),
        (lambda x, p, d: (np.where(np.arange(24).reshape(12, 2) == 5, np.nan, x), p, d), "NaN"),
    ],
)
def test_bad_input_is_named(change, message):
    x, pert, dose = change(*_toy())
    with pytest.raises(ValueError, match=message):
        Contexts.from_arrays(x, pert, dose)


def test_prepare_checks_anndata():
    x, pert, dose = _toy()
    adata = ad.AnnData(x, obs=pd.DataFrame({"perturbation": pert, "dose": dose},
                                           index=[f"c{i}" for i in range(12)]))
    assert prepare(adata).n_contexts == 4
    with pytest.raises(ValueError, match="obs key 'drug' not found"):
        prepare(adata, perturbation_key="drug")
    with pytest.raises(ValueError, match=r"no control cells.*control=<your control label>"):
        prepare(adata, control="DMSO")
    adata.obs["dose"] = -1.0
    with pytest.raises(ValueError, match="doses ≥ 0"):
        prepare(adata)


def test_blockwise_standardise_and_finite_check(monkeypatch):
    """Whole-matrix passes run in row blocks (no N × d temporaries); same result as one op."""
    import causalpert.data.contexts as contexts_module

    monkeypatch.setattr(contexts_module, "ROW_BLOCK", 7)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g)
    pert = np.array(["control"] * 20 + ["a"] * 30)
    c = Contexts.from_arrays(x.numpy(), pert, np.ones(50))
    shift, scale = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 0.5, 1.0])
    expected = (c.x - shift) / scale
    torch.testing.assert_close(c.standardised(shift, scale).x, expected)
    owned = Contexts.from_arrays(x.numpy(), pert, np.ones(50))
    z = owned.standardised(shift, scale, inplace=True)
    torch.testing.assert_close(z.x, expected)
    assert z.x.data_ptr() == owned.x.data_ptr()  # no copy of X
    per_context = torch.stack([x[:20].mean(0), x[20:].mean(0)])
    torch.testing.assert_close(c.means(), per_context)
    bad = x.numpy().copy()
    bad[45, 2] = np.inf  # in the last block
    with pytest.raises(ValueError, match="NaN or inf"):
        Contexts.from_arrays(bad, pert, np.ones(50))
