"""AnnData → ``Contexts``: every input check lives here, each with a one-line error.

Matrices may be dense or sparse (any scipy format), float or integer. They are checked on the
stored values only (``.data`` of a sparse matrix) and densified once, straight to float32,
when the cells are grouped into contexts (``contexts.float32_rows``).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .backed import lazy_matrix
from .contexts import ROW_BLOCK, Contexts, float32_rows

F32_MAX = float(np.finfo(np.float32).max)


def expression_matrix(adata: ad.AnnData, *, layer: str | None = None):
    """``X`` (or a layer), checked for a numeric dtype and NaN/inf, without densifying it.

    Returns:
        the matrix [N, d] as stored (a dense array, or a sparse matrix in CSR format).
    """
    if layer is not None and layer not in adata.layers:
        raise ValueError(f"layer {layer!r} not in adata.layers {list(adata.layers)}: pass one "
                         "of them or layer=None for X")
    x = adata.X if layer is None else adata.layers[layer]
    name = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    if x is None:
        raise ValueError("adata.X is empty: store the expression matrix in X or pass layer=")
    x = x.tocsr() if sp.issparse(x) else np.asarray(x)
    if x.ndim != 2 or x.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a 2-D numeric matrix, got dtype {x.dtype} with "
                         f"{x.ndim} dimension(s): store numbers (float or integer counts)")
    if x.dtype.kind == "f":
        rows = _rows_where(x, lambda v: ~np.isfinite(v))
        if len(rows):
            raise ValueError(f"{len(rows)} cells have NaN or inf values in {name}: remove or "
                             "impute them first")
        if x.dtype.itemsize > 4:  # the models compute in float32: 1e39 would become inf
            rows = _rows_where(x, lambda v: np.abs(v) > F32_MAX)
            if len(rows):
                raise ValueError(f"{len(rows)} cells have values beyond ±{F32_MAX:.2g} (the "
                                 f"float32 range) in {name}: rescale them first")
    return x


def _rows_where(x, test) -> np.ndarray:
    """The distinct rows of x (dense, or sparse CSR: its stored values) where ``test`` (an
    elementwise predicate) holds for some value."""
    if sp.issparse(x):
        return np.unique(x.tocoo().row[test(x.data)])
    return np.unique(np.concatenate([i + np.nonzero(test(x[i : i + ROW_BLOCK]))[0]  # in blocks
                                     for i in range(0, len(x), ROW_BLOCK)] or [np.zeros(0, int)]))


def dense_matrix(adata: ad.AnnData, *, layer: str | None = None) -> np.ndarray:
    """``X`` (or a layer) as a checked float32 dense array [N, d] (converted once)."""
    return float32_rows(expression_matrix(adata, layer=layer))


def _check_obs_key(adata: ad.AnnData, key: str, option: str) -> None:
    if key not in adata.obs:
        raise ValueError(f"obs key {key!r} not found: pass {option}= one of the obs columns "
                         f"{list(adata.obs.columns)}")


def _doses(adata: ad.AnnData, dose_key: str | None, is_ctrl: np.ndarray) -> np.ndarray:
    """Doses [N] (control cells: 0, whatever is stored); finite and ≥ 0 for the others."""
    if dose_key is None:
        return np.where(is_ctrl, 0.0, 1.0)
    try:
        dose = pd.to_numeric(adata.obs[dose_key].astype(object)).to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        example = adata.obs[dose_key].astype(str).iloc[0]
        raise ValueError(f"obs[{dose_key!r}] must be numeric, got values such as {example!r}: "
                         "store doses as numbers") from None
    dose = np.where(is_ctrl, 0.0, dose)
    bad = ~np.isfinite(dose)
    if bad.any():
        raise ValueError(f"obs[{dose_key!r}] has {int(bad.sum())} NaN or inf value(s) in "
                         "perturbed cells: doses must be finite; fill or drop those cells")
    if (dose < 0).any():
        raise ValueError(f"obs[{dose_key!r}] has {int((dose < 0).sum())} negative value(s) "
                         f"(min {dose.min():g}): give finite doses ≥ 0")
    return dose


def _check_context_sizes(pert: np.ndarray, dose: np.ndarray) -> None:
    sizes = pd.DataFrame({"p": pert, "d": dose}).groupby(["p", "d"]).size()
    small = sizes[sizes < 2]
    if len(small):
        (p, d), n = small.index[0], int(small.iloc[0])
        raise ValueError(f"{len(small)} context(s) have fewer than 2 cells, e.g. {p!r} at dose "
                         f"{d:g} ({n} cell): every (perturbation, dose) needs ≥ 2 cells; drop "
                         "those cells or pool their doses")


def prepare(
    adata: ad.AnnData,
    *,
    perturbation_key: str = "perturbation",
    dose_key: str | None = "dose",
    control: str = "control",
    layer: str | None = None,
) -> Contexts:
    """Group the cells of ``adata`` into contexts (control first) after checking the input.

    Checks, each a one-line ``ValueError`` saying what to fix: cells and genes present, obs
    keys present, unique gene names, no missing perturbation labels, control cells present,
    doses of perturbed cells numeric, finite and ≥ 0 (control doses are ignored), ≥ 2 cells per
    (perturbation, dose), the layer present, a numeric matrix without NaN/inf.

    Args:
        adata: cells × genes; ``X`` (or the layer) dense or sparse, float or integer; a
            backed AnnData (``read_h5ad(..., backed="r")`` or ``data.read_lazy``) keeps X on
            disk and reads the rows of each minibatch only.
        perturbation_key: ``obs`` column naming each cell's perturbation.
        dose_key: ``obs`` column with doses ≥ 0, or None (every dose = 1).
        control: the value of ``obs[perturbation_key]`` marking control cells.
        layer: use this layer instead of ``X``.
    """
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(f"adata has shape {adata.shape}: pass cells × genes with at least one "
                         "of each")
    _check_obs_key(adata, perturbation_key, "perturbation_key")
    if dose_key is not None:
        _check_obs_key(adata, dose_key, "dose_key")
    if adata.var_names.has_duplicates:
        dup = adata.var_names[adata.var_names.duplicated()][0]
        raise ValueError(f"duplicate gene name {dup!r}: run adata.var_names_make_unique()")
    labels = adata.obs[perturbation_key]
    if labels.isna().any():
        raise ValueError(f"obs[{perturbation_key!r}] has {int(labels.isna().sum())} missing "
                         "label(s): label or drop those cells")
    pert = labels.astype(str).to_numpy()
    is_ctrl = pert == control
    if not is_ctrl.any():
        values = sorted(set(pert))[:5]
        raise ValueError(
            f"no control cells: no cell has {perturbation_key} == {control!r} "
            f"(values include {values}); pass control=<your control label>"
        )
    dose = _doses(adata, dose_key, is_ctrl)
    _check_context_sizes(pert, dose)
    x = lazy_matrix(adata, layer)  # on disk: NaN/inf are found by the streamed means
    if x is None:
        x = expression_matrix(adata, layer=layer)
    return Contexts.from_arrays(x, pert, dose, control=control, genes=adata.var_names)
