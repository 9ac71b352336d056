"""Fitting from a backed file (X on disk, sparse CSR) gives the in-memory fit."""

import scipy.sparse as sp
import torch

from causalpert.data import SyntheticDesign, simulate
from causalpert.data.backed import BackedRows, read_lazy
from causalpert.data.prepare import prepare
from causalpert.models import GIM

DESIGN = SyntheticDesign(d=6, n_features=8, n_train_perturbations=6, n_ood_perturbations=2,
                         n_control=200, n_test_cells=20)


def test_gim_fit_from_backed_h5ad_matches_memory(tmp_path):
    adata = simulate("paper-synthetic", sim="linear", seed=2, design=DESIGN)
    train = adata[adata.obs["split"] == "train"].copy()
    train.X = sp.csr_matrix(train.X)
    path = tmp_path / "train.h5ad"
    train.write_h5ad(path)
    lazy = read_lazy(path)
    assert isinstance(prepare(lazy).x, BackedRows)
    kw = {"steps": 40, "refit_steps": 20}
    mem = GIM(causal="linear", seed=0, **kw).fit(train, progress=False)
    disk = GIM(causal="linear", seed=0, **kw).fit(lazy, progress=False)
    for (k, a), b in zip(mem.drift.state_dict().items(), disk.drift.state_dict().values(),
                         strict=True):
        assert torch.allclose(a, b, atol=1e-4), k
    pm = mem.target_probabilities().to_numpy()
    pd_ = disk.target_probabilities().to_numpy()
    assert abs(pm - pd_).max() < 1e-3
