"""Log-normalisation of counts and highly variable genes (scanpy, imported lazily)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .prepare import expression_matrix

SCANPY_HINT = 'pip install "causalpert[scanpy]"'
#: largest value accepted as already log-normalised (log1p(1e4) ≈ 9.2 after normalize_total)
LOG_MAX = 30.0


def _scanpy():
    try:
        import scanpy as sc
    except ImportError:
        raise ImportError(f"log-normalisation and gene selection need scanpy: {SCANPY_HINT}"
                          ) from None
    return sc


def is_counts(x: sp.csr_matrix) -> bool:
    """True iff every stored value is a non-negative integer."""
    return bool((x.data >= 0).all() and (x.data == np.round(x.data)).all())


def log_normalise(adata: ad.AnnData, *, layer: str | None = None,
                  normalize: bool | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
    """``log1p(x / total(x) · 1e4)`` per cell of ``X`` (or ``layer``), unless it is done already.

    Rule when ``normalize`` is None: the data are already log-normalised if ``adata.uns`` has
    "log1p" (scanpy's mark); else they are counts, to be normalised, if every stored value is a
    non-negative integer; else they are taken as log-normalised if all values lie in
    [0, ``LOG_MAX`` = 30]; anything else (negative or large non-integer values) is an error.

    Returns:
        (log-normalised matrix [N, d] float32 CSR, the counts [N, d] as float32 CSR when they
        were normalised here, else None).
    """
    x = sp.csr_matrix(expression_matrix(adata, layer=layer), dtype=np.float32)
    counts = is_counts(x)
    if normalize is None:
        in_range = x.nnz == 0 or (x.data.min() >= 0 and x.data.max() <= LOG_MAX)
        if "log1p" not in adata.uns and not counts and not in_range:
            raise ValueError("the matrix is neither counts (non-negative integers) nor "
                             f"log-normalised (values in [0, {LOG_MAX:g}]): pass layer= with "
                             "raw counts, or normalize=True/False")
        normalize = counts and "log1p" not in adata.uns
    if not normalize:
        return x, None
    if x.nnz and x.data.min() < 0:
        raise ValueError("cannot log-normalise negative values: pass layer= with raw counts")
    sc = _scanpy()
    tmp = ad.AnnData(X=x.copy())
    sc.pp.normalize_total(tmp, target_sum=1e4)
    sc.pp.log1p(tmp)
    return sp.csr_matrix(tmp.X, dtype=np.float32), x


def top_variable_genes(x: sp.csr_matrix, n_genes: int) -> np.ndarray:
    """Column indices (ascending) of the ``n_genes`` most variable genes of log data x [N, d].

    Ranks genes by scanpy's normalised dispersion (``highly_variable_genes``, flavor
    "seurat"); genes without one (e.g. never expressed) come last, ties keep gene order.
    """
    if not 1 <= n_genes <= x.shape[1]:
        raise ValueError(f"n_genes must be between 1 and the {x.shape[1]} genes, got {n_genes}")
    sc = _scanpy()
    tmp = ad.AnnData(X=x, var=pd.DataFrame(index=[f"g{j}" for j in range(x.shape[1])]))
    sc.pp.highly_variable_genes(tmp, n_top_genes=n_genes, flavor="seurat")
    score = np.nan_to_num(tmp.var["dispersions_norm"].to_numpy(dtype=np.float64), nan=-np.inf)
    return np.sort(np.argsort(-score, kind="stable")[:n_genes])
