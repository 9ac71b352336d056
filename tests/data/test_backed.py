"""BackedRows reads the numbers of the in-memory matrix (h5ad or zarr, dense or sparse)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from causalpert.data.backed import BackedRows, read_anndata, read_lazy
from causalpert.data.contexts import Contexts


def _write(tmp_path, sparse: bool, fmt: str):
    rng = np.random.default_rng(0)
    x = rng.poisson(1.0, size=(300, 7)).astype(np.float32)
    pert = rng.choice(["control", "a", "b"], size=300)
    obs = pd.DataFrame({"perturbation": pert}, index=[f"c{i}" for i in range(300)])
    adata = ad.AnnData(X=sp.csr_matrix(x) if sparse else x, obs=obs)
    path = tmp_path / f"cells.{fmt}"
    adata.write_h5ad(path) if fmt == "h5ad" else adata.write_zarr(path)
    return path, x, pert


@pytest.mark.filterwarnings("ignore:Writing zarr v2")
@pytest.mark.parametrize(("sparse", "fmt"), [(True, "h5ad"), (False, "h5ad"), (True, "zarr")])
def test_rows_match_memory(tmp_path, sparse, fmt):
    path, x, _ = _write(tmp_path, sparse, fmt)
    lazy = read_lazy(path)
    source = lazy.X
    assert lazy.n_obs == 300
    order = np.random.default_rng(1).permutation(300)
    rows = BackedRows(source, order, chunk=64)
    dense = torch.from_numpy(x[order])
    assert rows.shape == dense.shape
    assert torch.equal(rows[5:17], dense[5:17])
    idx = torch.tensor([[3, 3, 250], [0, 299, 7]])  # repeats and any order
    assert torch.equal(rows[idx], dense[idx])
    mu, s = dense.mean(0), dense.std(0) + 0.5
    z = rows.affine(mu, s).affine(torch.ones(7), 2 * torch.ones(7))
    assert torch.allclose(z[idx], ((dense[idx] - mu) / s - 1) / 2, atol=1e-6)
    group = np.arange(300) % 4
    sums, bad = rows.group_sums(group, 4)
    ref = torch.zeros(4, 7, dtype=torch.float64).index_add_(0, torch.from_numpy(group),
                                                           dense.double())
    assert bad == 0 and torch.allclose(sums, ref)


def test_contexts_on_backed_rows_sample_like_memory(tmp_path):
    path, x, pert = _write(tmp_path, True, "h5ad")
    mem = Contexts.from_arrays(x, pert, np.ones(300))
    order = np.argsort(np.array([mem.perturbations.index(p) for p in pert]), kind="stable")
    source = read_lazy(path).X
    backed = Contexts(x=BackedRows(source, order), offsets=mem.offsets,
                      perturbations=mem.perturbations, doses=mem.doses, genes=mem.genes)
    assert torch.allclose(backed.means(), mem.means())
    assert torch.equal(backed.cells(1), mem.cells(1))
    ks = torch.tensor([0, 2, 1])
    a = mem.sample(ks, 20, generator=torch.Generator().manual_seed(3))
    b = backed.sample(ks, 20, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    mu, s = mem.control_moments()
    assert torch.allclose(backed.standardised(mu, s).cells(2), mem.standardised(mu, s).cells(2))
    sub_m, sub_b = mem.subset([0, 2]), backed.subset([0, 2])
    assert torch.equal(sub_b.cells(1), sub_m.cells(1))


def test_nan_in_backed_file_is_reported(tmp_path):
    x = np.ones((20, 3), dtype=np.float32)
    x[4, 1] = np.nan
    path = tmp_path / "nan.h5ad"
    ad.AnnData(X=x).write_h5ad(path)
    source = read_lazy(path).X
    ctx = Contexts(x=BackedRows(source, np.arange(20)), offsets=torch.tensor([0, 10, 20]),
                   perturbations=("control", "a"), doses=torch.tensor([0.0, 1.0]),
                   genes=("g0", "g1", "g2"))
    with pytest.raises(ValueError, match="1 cells have NaN or inf"):
        ctx.means()


@pytest.mark.filterwarnings("ignore:Element .* was written without encoding")
@pytest.mark.parametrize("backed", [False, True])
def test_read_anndata_says_what_a_foreign_file_is(tmp_path, backed):
    """A CSV renamed .h5ad, an HDF5 file that is not AnnData, a directory, a missing path: each
    a one-line error naming what the file is and what to pass, never h5py's own message."""
    path, x, _ = _write(tmp_path, sparse=False, fmt="h5ad")
    assert np.array_equal(np.asarray(read_anndata(path, backed=backed).X), x)
    csv = tmp_path / "data.h5ad"
    csv.write_text("gene,cell1\nA,1\n")
    with pytest.raises(ValueError, match=r"data.h5ad is not an HDF5/AnnData file \(a text file "
                                         r"starting 'gene,cell1'\): pass an .h5ad written by "
                                         r"AnnData.write_h5ad") as err:
        read_anndata(csv, backed=backed)
    assert "signature" not in str(err.value) and "\n" not in str(err.value)
    import h5py

    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["numbers"] = np.arange(3)
    with pytest.raises(ValueError, match=r"plain\.h5 is not a readable AnnData file"):
        read_anndata(tmp_path / "plain.h5", backed=backed)
    with pytest.raises(ValueError, match=r"is not an HDF5/AnnData file \(a directory\)"):
        read_anndata(tmp_path, backed=backed)
    with pytest.raises(FileNotFoundError, match=r"nope\.h5ad not found: pass an \.h5ad"):
        read_anndata(tmp_path / "nope.h5ad", backed=backed)
