"""Perturbation features: a user table, the one stored in ``uns``, or a one-hot code."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd


def one_hot_features(perturbations) -> pd.DataFrame:
    """One-hot code of the given perturbation names (columns ``is_<name>``)."""
    names = list(dict.fromkeys(str(p) for p in perturbations))
    return pd.DataFrame(np.eye(len(names)), index=names, columns=[f"is_{n}" for n in names])


def resolve_features(
    adata: ad.AnnData,
    features: pd.DataFrame | None,
    perturbations,
    *,
    uns_key: str = "perturbation_features",
) -> tuple[pd.DataFrame, str]:
    """The feature table for ``perturbations`` and where it came from.

    ``features`` (a DataFrame indexed by perturbation name) wins; else ``adata.uns[uns_key]``;
    else a one-hot code (then unseen perturbations cannot be predicted).

    Returns:
        (table indexed by perturbation with float columns, source: "user" | "uns" | "one-hot").
    """
    if features is None and uns_key in adata.uns:
        features, source = adata.uns[uns_key], "uns"
    elif features is not None:
        source = "user"
    else:
        return one_hot_features(perturbations), "one-hot"
    if not isinstance(features, pd.DataFrame):
        raise ValueError("features must be a pandas DataFrame indexed by perturbation name")
    features = features.copy()
    features.index = features.index.astype(str)
    missing = [p for p in dict.fromkeys(map(str, perturbations)) if p not in features.index]
    if missing:
        raise ValueError(
            f"features missing for {len(missing)} perturbation(s), e.g. {missing[:3]}: add rows "
            "for them to the feature table"
        )
    values = features.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("perturbation features contain NaN or inf: fix the feature table")
    return features.astype(np.float64), source
