"""AnnData → ``Contexts``: every input check lives here, each with a one-line error."""

from __future__ import annotations

import anndata as ad
import numpy as np
import scipy.sparse as sp

from .contexts import Contexts


def dense_matrix(adata: ad.AnnData, *, layer: str | None = None) -> np.ndarray:
    """``X`` (or a layer) as a float32 dense array, checked for NaN/inf."""
    if layer is not None and layer not in adata.layers:
        raise ValueError(f"layer {layer!r} not in adata.layers {list(adata.layers)}")
    x = adata.X if layer is None else adata.layers[layer]
    if x is None:
        raise ValueError("adata.X is empty: store the expression matrix in X or pass layer=")
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise ValueError(f"{bad} cells have NaN or inf values: remove or impute them first")
    return x


def prepare(
    adata: ad.AnnData,
    *,
    perturbation_key: str = "perturbation",
    dose_key: str | None = "dose",
    control: str = "control",
    layer: str | None = None,
) -> Contexts:
    """Group the cells of ``adata`` into contexts (control first) after checking the input.

    Args:
        adata: cells × genes.
        perturbation_key: ``obs`` column naming each cell's perturbation.
        dose_key: ``obs`` column with doses ≥ 0, or None (every dose = 1).
        control: the value of ``obs[perturbation_key]`` marking control cells.
        layer: use this layer instead of ``X``.
    """
    for key in (perturbation_key, dose_key):
        if key is not None and key not in adata.obs:
            raise ValueError(
                f"obs key {key!r} not found; available columns: {list(adata.obs.columns)}"
            )
    if adata.var_names.has_duplicates:
        dup = adata.var_names[adata.var_names.duplicated()][0]
        raise ValueError(f"duplicate gene name {dup!r}: run adata.var_names_make_unique()")
    pert = adata.obs[perturbation_key].astype(str).to_numpy()
    if not (pert == control).any():
        values = sorted(set(pert))[:5]
        raise ValueError(
            f"no control cells: no cell has {perturbation_key} == {control!r} "
            f"(values include {values}); pass control=<your control label>"
        )
    dose = np.ones(adata.n_obs) if dose_key is None else np.asarray(
        adata.obs[dose_key], dtype=np.float64)
    if not np.isfinite(dose).all() or (dose < 0).any():
        raise ValueError(f"obs[{dose_key!r}] must hold finite doses ≥ 0")
    x = dense_matrix(adata, layer=layer)
    return Contexts.from_arrays(x, pert, dose, control=control, genes=adata.var_names)
