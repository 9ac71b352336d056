"""``BackedRows``: the cells of an on-disk matrix (backed h5ad or zarr, dense or sparse), read
on demand so that fitting never holds the whole matrix in memory.

A ``Contexts`` built on ``BackedRows`` (``prepare`` does this for ``adata.isbacked`` or a zarr
store) reads only the rows of each minibatch: memory is O(batch · d) plus one chunk for the
streamed passes (context means, the finiteness check), whatever the number of cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch


class BackedRows:
    """Read-only [N, d] float32 matrix: row i is file row ``order[i]`` of ``source``, mapped
    through x ↦ (x − shift) / scale.

    Args:
        source: a row-indexable on-disk matrix (``adata.X`` of a backed AnnData, an h5py
            dataset, or ``anndata.io.sparse_dataset`` of an h5/zarr group); indexing it with
            sorted unique rows returns a dense array or a scipy sparse matrix.
        order: [N] file rows in the order of this matrix (e.g. grouped by context).
        shift, scale: [d] affine map (default: identity).
        chunk: rows per read in streamed passes.
    """

    def __init__(self, source, order, *, shift=None, scale=None, chunk: int = 8192):
        self.source = source
        self.order = np.asarray(order, dtype=np.int64)
        self.n_file_rows, d = (int(s) for s in source.shape)
        self.shift = torch.zeros(d) if shift is None else torch.as_tensor(shift).float()
        self.scale = torch.ones(d) if scale is None else torch.as_tensor(scale).float()
        self.chunk = chunk

    # a small part of the tensor interface, enough for ``Contexts``
    ndim = 2

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.order), len(self.shift)))

    def dim(self) -> int:
        return 2

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index) -> torch.Tensor:
        """Rows by slice (→ [n, d]) or by an integer tensor of any shape (→ [*shape, d])."""
        if isinstance(index, slice):
            index = torch.arange(len(self.order))[index]
        pos = torch.as_tensor(index)
        return self._read(self.order[pos.reshape(-1).numpy()]).reshape(*pos.shape, -1)

    def affine(self, shift: torch.Tensor, scale: torch.Tensor) -> BackedRows:
        """The same rows mapped once more, x ↦ (x − shift) / scale, without reading anything."""
        return BackedRows(self.source, self.order, shift=self.shift + shift * self.scale,
                          scale=self.scale * scale, chunk=self.chunk)

    def reorder(self, positions) -> BackedRows:
        """Rows ``positions`` of this matrix (no data is read)."""
        return BackedRows(self.source, self.order[np.asarray(positions, dtype=np.int64)],
                          shift=self.shift, scale=self.scale, chunk=self.chunk)

    # ---------------------------------------------------------------- reading
    def _read(self, rows: np.ndarray) -> torch.Tensor:
        """File rows (any order, repeats allowed) → [len(rows), d], read sorted and unique."""
        uniq, inverse = np.unique(rows, return_inverse=True)
        block = _dense(self.source[uniq]) if len(uniq) else np.zeros((0, self.shape[1]))
        x = torch.from_numpy(block)[torch.from_numpy(inverse.reshape(-1))]
        return (x - self.shift) / self.scale

    def file_chunks(self) -> Iterator[tuple[int, torch.Tensor]]:
        """The whole file in row order, ``chunk`` contiguous rows at a time: (start, [n, d])."""
        for start in range(0, self.n_file_rows, self.chunk):
            stop = min(start + self.chunk, self.n_file_rows)
            x = torch.from_numpy(_dense(self.source[start:stop]))
            yield start, (x - self.shift) / self.scale

    def group_sums(self, group: np.ndarray, n_groups: int) -> tuple[torch.Tensor, int]:
        """Per-group sums [n_groups, d] (float64) of the rows, ``group`` [N] giving each row's
        group, in one sequential pass over the file; also the number of rows with NaN/inf."""
        of_file = np.full(self.n_file_rows, -1, dtype=np.int64)
        of_file[self.order] = group
        sums = torch.zeros(n_groups, self.shape[1], dtype=torch.float64)
        bad = 0
        for start, x in self.file_chunks():
            g = torch.from_numpy(of_file[start : start + len(x)])
            keep = g >= 0
            x, g = x[keep].double(), g[keep]
            finite = torch.isfinite(x).all(1)
            bad += int((~finite).sum())
            sums.index_add_(0, g[finite], x[finite])
        return sums, bad


def _dense(block) -> np.ndarray:
    block = block.toarray() if sp.issparse(block) else np.asarray(block)
    return block.astype(np.float32, copy=False)


#: what a reader of AnnData files accepts, said in every error about the file
READ_HINT = ("pass an .h5ad written by AnnData.write_h5ad or a .zarr store written by "
             "AnnData.write_zarr (a CSV table: anndata.read_csv(path).write_h5ad(...))")


def _describe(path: Path) -> str:
    """What a file that is not AnnData looks like: a directory, empty, text or binary."""
    if path.is_dir():
        return "a directory"
    with open(path, "rb") as fh:  # its first bytes only: the file may be GBs
        head = fh.read(40)
    if not head:
        return "an empty file"
    try:
        return f"a text file starting {head.decode().splitlines()[0][:30]!r}"
    except UnicodeDecodeError:
        return f"a binary file starting {head[:8]!r}"


def read_anndata(path, *, backed: bool = False):
    """An AnnData from an .h5ad file or a .zarr store (``backed``: X stays on disk,
    ``read_lazy``). A missing path is a ``FileNotFoundError``, anything that is not AnnData a
    one-line ``ValueError``, each saying what to pass."""
    import anndata as ad
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {READ_HINT}")
    is_zarr = path.suffix == ".zarr"
    if not is_zarr and (path.is_dir() or not h5py.is_hdf5(path)):
        raise ValueError(f"{path} is not an HDF5/AnnData file ({_describe(path)}): {READ_HINT}")
    try:
        if backed:
            return read_lazy(path)
        return ad.read_zarr(path) if is_zarr else ad.read_h5ad(path)
    except Exception as err:  # h5py, zarr and anndata raise many types on a foreign file
        raise ValueError(f"{path} is not a readable AnnData file ({type(err).__name__}: "
                         f"{err}): {READ_HINT}") from None


def read_lazy(path):
    """An AnnData whose ``X`` stays on disk (``.h5ad``: backed="r"; ``.zarr``: a lazy sparse
    dataset), for fitting on data larger than memory; obs, var and uns are read."""
    import anndata as ad

    path = str(path)
    if not path.rstrip("/").endswith(".zarr"):
        return ad.read_h5ad(path, backed="r")
    import zarr

    group = zarr.open_group(path, mode="r")
    x = group["X"]
    parts = {k: ad.io.read_elem(group[k]) for k in ("obs", "var", "uns") if k in group}
    return ad.AnnData(X=ad.io.sparse_dataset(x) if isinstance(x, zarr.Group) else x, **parts)


def lazy_matrix(adata, layer: str | None = None):
    """The on-disk ``X`` of a backed / lazy AnnData as ``BackedRows`` in file order, or None
    if ``X`` is in memory."""
    import anndata as ad

    x = adata.X
    lazy = adata.isbacked or isinstance(x, ad.abc.CSRDataset | ad.abc.CSCDataset)
    if not lazy:
        return None
    if layer is not None:
        raise ValueError("layer= is not supported for backed AnnData: write the layer to X of "
                         "its own file, or load the data into memory")
    if isinstance(x, ad.abc.CSCDataset) or getattr(x, "format", None) == "csc":
        raise ValueError("backed X is stored as CSC, which reads rows slowly: store X as CSR "
                         "(adata.X = adata.X.tocsr()) before writing the file")
    return BackedRows(x, np.arange(adata.n_obs))
