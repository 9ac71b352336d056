"""Datasets bundled with causalpert: ``sachs()`` (Sachs et al. 2005, flow cytometry)."""

from __future__ import annotations

import gzip
import importlib.resources
import zlib

import anndata as ad
import numpy as np
import pandas as pd

__all__ = ["SACHS_CONSENSUS_EDGES", "SACHS_INTENDED_TARGETS", "sachs"]

_SACHS_FILE = "sachs2005.csv.gz"
_SACHS_SHAPE = (7466, 12)  # 7,466 cells x (condition + 11 proteins)
_SACHS_PROTEINS = (
    "praf", "pmek", "plcg", "PIP2", "PIP3", "p44/42", "pakts473", "PKA", "PKC", "P38", "pjnk",
)  # fmt: skip

#: Condition (file order, control first) -> intended target column; "" = no single target.
SACHS_INTENDED_TARGETS: dict[str, str] = {
    "cd3cd28": "",  # anti-CD3/CD28, the control
    "cd3cd28icam2": "",  # + ICAM-2, no single target
    "cd3cd28+aktinhib": "pakts473",  # Akt inhibitor
    "cd3cd28+g0076": "PKC",  # G06976, PKC inhibitor
    "cd3cd28+psitect": "PIP2",  # psitectorigenin
    "cd3cd28+u0126": "pmek",  # U0126, MEK inhibitor
    "cd3cd28+ly": "PIP3",  # LY294002, PI3K inhibitor
    "pma": "PKC",  # PMA, PKC activator
    "b2camp": "PKA",  # b2cAMP, PKA activator
}

#: The 17-edge consensus network of Sachs et al. (2005), as (source, target) column names.
SACHS_CONSENSUS_EDGES: tuple[tuple[str, str], ...] = (
    ("praf", "pmek"), ("pmek", "p44/42"), ("p44/42", "pakts473"),  # Raf->Mek->Erk->Akt
    ("plcg", "PIP2"), ("plcg", "PIP3"), ("PIP3", "PIP2"),
    ("PKC", "praf"), ("PKC", "pmek"), ("PKC", "PKA"), ("PKC", "pjnk"), ("PKC", "P38"),
    ("PKA", "praf"), ("PKA", "pmek"), ("PKA", "p44/42"), ("PKA", "pakts473"),
    ("PKA", "pjnk"), ("PKA", "P38"),
)  # fmt: skip

_PROVENANCE = (
    "Sachs et al. (2005) Science 308:523-529; values = cdt 0.6.0 "
    "cdt/data/resources/cyto_full_data.csv (raw intensities), condition labels re-attached "
    "by the published file sizes; see causalpert/data/files/README.md"
)


def sachs() -> ad.AnnData:
    """Load the Sachs et al. (2005) protein-signalling data bundled with causalpert.

    Flow cytometry of 11 phospho-proteins in 7,466 human T cells under 9 reagent conditions
    (see ``docs/benchmarks.md``, protocol ``sachs``). No download is needed: the file ships
    inside the package (``causalpert/data/files/sachs2005.csv.gz``, provenance in the
    ``README.md`` next to it).

    Returns:
        AnnData with ``n_obs = 7466`` cells and ``n_vars = 11`` proteins:

        - ``X``: float32 ``log1p(raw)``, shape ``[7466, 11]``.
        - ``layers["raw"]``: float32 raw intensities (all >= 1), shape ``[7466, 11]``.
        - ``var_names``: the protein columns in file order, ``praf`` ... ``pjnk``.
        - ``obs_names``: ``"cell_0"`` ... ``"cell_7465"`` (rows in file order).
        - ``obs["perturbation"]``: categorical condition name as in the file, categories in
          file order; the control is ``"cd3cd28"``.
        - ``obs["dose"]``: float64, 1.0 for every cell, control included. It is a constant
          placeholder: the reagents were used at one concentration each.
        - ``uns["intended_targets"]``: dict condition -> intended target column, ``""`` when
          there is no single target (the control and ``cd3cd28icam2``); ``""`` rather than
          ``None`` because h5ad cannot store ``None``.
        - ``uns["consensus_graph"]``: int8 ``[11, 11]``, entry ``(i, j) = 1`` iff the
          17-edge consensus network has the edge ``var_i -> var_j``.
        - ``uns["consensus_edges"]``: the same edges as ``"src->dst"`` strings.
        - ``uns["control"] = "cd3cd28"``, ``uns["dataset"] = "sachs2005"``,
          ``uns["provenance"]``: a one-line source note.

    Raises:
        RuntimeError: if the bundled file is missing or corrupt.

    Examples:
        >>> from causalpert.data.datasets import sachs
        >>> adata = sachs()
        >>> adata.shape
        (7466, 11)
        >>> int((adata.obs["perturbation"] == "cd3cd28+u0126").sum())
        799
        >>> adata.uns["intended_targets"]["cd3cd28+u0126"]
        'pmek'
        >>> int(adata.uns["consensus_graph"].sum())
        17
    """
    df = _read_bundled_csv()
    raw = df[list(_SACHS_PROTEINS)].to_numpy(dtype=np.float32)
    conditions = list(SACHS_INTENDED_TARGETS)
    obs = pd.DataFrame(
        {
            "perturbation": pd.Categorical(df["condition"].to_numpy(), categories=conditions),
            "dose": np.ones(len(df), dtype=np.float64),
        },
        index=pd.Index([f"cell_{i}" for i in range(len(df))]),
    )
    var = pd.DataFrame(index=pd.Index(list(_SACHS_PROTEINS)))
    index = {name: i for i, name in enumerate(_SACHS_PROTEINS)}
    graph = np.zeros((len(_SACHS_PROTEINS),) * 2, dtype=np.int8)
    for src, dst in SACHS_CONSENSUS_EDGES:
        graph[index[src], index[dst]] = 1
    return ad.AnnData(
        X=np.log1p(raw),
        obs=obs,
        var=var,
        layers={"raw": raw},
        uns={
            "intended_targets": dict(SACHS_INTENDED_TARGETS),
            "consensus_graph": graph,
            "consensus_edges": [f"{s}->{d}" for s, d in SACHS_CONSENSUS_EDGES],
            "control": conditions[0],
            "dataset": "sachs2005",
            "provenance": _PROVENANCE,
        },
    )


def _read_bundled_csv() -> pd.DataFrame:
    """Read and check the bundled csv; one-line RuntimeError if it is missing or corrupt."""
    resource = importlib.resources.files("causalpert.data") / "files" / _SACHS_FILE
    if not resource.is_file():
        raise RuntimeError(f"bundled {_SACHS_FILE} is missing: reinstall causalpert")
    try:
        with resource.open("rb") as fh:
            df = pd.read_csv(fh, compression="gzip")
    except (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile) as err:
        raise RuntimeError(
            f"bundled {_SACHS_FILE} is corrupt ({type(err).__name__}): reinstall causalpert"
        ) from err
    expected_cols = ["condition", *_SACHS_PROTEINS]
    problem = None
    if df.shape != _SACHS_SHAPE:
        n, m = df.shape
        problem = f"expected {_SACHS_SHAPE[0]} × {_SACHS_SHAPE[1]}, got {n} × {m}"
    elif list(df.columns) != expected_cols:
        problem = f"expected columns {expected_cols}"
    elif not set(df["condition"]) <= set(SACHS_INTENDED_TARGETS):
        problem = "unknown condition names"
    elif not all(pd.api.types.is_numeric_dtype(df[c]) for c in _SACHS_PROTEINS):
        problem = "non-numeric intensities"
    else:
        values = df[list(_SACHS_PROTEINS)].to_numpy(dtype=np.float64)
        if not (np.isfinite(values).all() and (values > 0).all()):
            problem = "intensities must be finite and positive"
    if problem is not None:
        raise RuntimeError(f"bundled {_SACHS_FILE} is corrupt ({problem}): reinstall causalpert")
    return df
