"""``BackedRows``: the cells of an on-disk matrix (backed h5ad or zarr, dense or sparse), read
on demand so that fitting never holds the whole matrix in memory.

A ``Contexts`` built on ``BackedRows`` (``prepare`` does this for ``adata.isbacked`` or a zarr
store) reads only the rows of each minibatch: memory is O(batch · d) plus one chunk for the
streamed passes (context means, the finiteness check), whatever the number of cells.
"""

from __future__ import annotations

from collections.abc import Iterator

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


def open_store(path) -> tuple[object, object]:
    """(X, obs) of an on-disk AnnData without reading X: ``.h5ad`` (h5py) or ``.zarr``."""
    import anndata as ad

    path = str(path)
    if path.rstrip("/").endswith(".zarr"):
        import zarr

        group = zarr.open_group(path, mode="r")
        x = group["X"]
        return (ad.io.sparse_dataset(x) if isinstance(x, zarr.Group) else x,
                ad.io.read_elem(group["obs"]))
    adata = ad.read_h5ad(path, backed="r")
    return adata.X, adata.obs
