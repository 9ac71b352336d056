"""Bundled single-cell CRISPR screens: Papalexi et al. (2021) and Norman et al. (2019)."""

from __future__ import annotations

import importlib.resources

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["norman2019", "papalexi2021", "papalexi_genes"]

_PAPALEXI_FILE = "papalexi2021_thp1_lowmoi.h5ad"
_NORMAN_FILE = "norman2019_k562_subset.h5ad"
_PAPALEXI_OBS = ("bio_rep", "grna", "grna_umis_frac", "target")
_NORMAN_OBS = ("perturbation",)
_CONTROL = "control"
_PAPALEXI_PROVENANCE = (
    "Papalexi et al. (2021) Nat Genet 53:322-331 (ECCITE-seq, THP-1, 25 knockouts); "
    "sceptredata 0.99.0 lowmoi_example_data (all cells, 299 random genes), raw UMI counts; "
    "see causalpert/data/files/README.md"
)
_NORMAN_PROVENANCE = (
    "Norman et al. (2019) Science 365:786-793 (Perturb-seq CRISPRa, K562); norman19 rows of "
    "perturbench devel.h5ad (3,375 cells x 500 HVGs, log1p-normalised); "
    "see causalpert/data/files/README.md"
)


def papalexi2021(*, min_guide_fraction: float = 0.8) -> ad.AnnData:
    """Load the Papalexi et al. (2021) THP-1 ECCITE-seq knockout screen bundled with causalpert.

    CRISPR knockout of 25 genes plus non-targeting guides in IFN-gamma-stimulated THP-1 cells,
    20,729 cells x 299 randomly chosen genes (raw UMI counts; provenance in
    ``causalpert/data/files/README.md``). Cells whose most abundant guide holds
    ``<= min_guide_fraction`` of their guide UMIs are dropped; with the default 0.8 this keeps
    16,093 cells (of the 2,386 non-targeting cells, 1,912 remain as controls).

    Args:
        min_guide_fraction: guide-purity threshold in ``[0, 1)``; ``0`` keeps every cell.

    Returns:
        AnnData with the kept cells and ``n_vars = 299`` genes:

        - ``X``: float32 ``log1p(count * median_lib / lib)``, where ``lib`` is a cell's total
          UMIs over the 299 genes and ``median_lib`` the median of ``lib`` over the kept cells.
        - ``layers["counts"]``: raw UMI counts, CSR float32.
        - ``obs["perturbation"]``: knocked-out gene (categorical), ``"control"`` for
          non-targeting guides; ``obs["guide"]``, ``obs["replicate"]``,
          ``obs["guide_fraction"]`` (top guide's share of the cell's guide UMIs);
          ``obs["dose"]``: float64 1.0 for every cell (a placeholder).
        - ``uns["intended_targets"]``: dict perturbation -> knocked-out gene (``""`` for
          control), all 25 knockouts; ``uns["measured_targets"]``: sorted knocked-out genes
          among ``var_names`` (9); ``uns["median_library_size"]``;
          ``uns["control"] = "control"``, ``uns["dataset"] = "papalexi2021"``,
          ``uns["provenance"]``. The source's guide-count matrix is not kept.

    Raises:
        ValueError: if ``min_guide_fraction`` is not in ``[0, 1)``.
        RuntimeError: if the bundled file is missing or corrupt.

    Examples:
        >>> from causalpert.data.screens import papalexi2021
        >>> adata = papalexi2021()
        >>> adata.shape
        (16093, 299)
        >>> adata.uns["intended_targets"]["STAT1"]
        'STAT1'
    """
    if not 0.0 <= float(min_guide_fraction) < 1.0:
        raise ValueError(f"min_guide_fraction must be in [0, 1), got {min_guide_fraction}")
    src = _read_bundled_h5ad(_PAPALEXI_FILE, _PAPALEXI_OBS, n_vars=299)
    counts = sp.csr_matrix(src.X, dtype=np.float32)
    obs_src = src.obs
    keep = obs_src["grna_umis_frac"].to_numpy(dtype=np.float64) > min_guide_fraction
    counts = counts[keep]
    obs_src = obs_src.loc[keep]
    target = obs_src["target"].astype(str).to_numpy()
    pert = np.where(target == "non-targeting", _CONTROL, target)
    knockouts = sorted(set(src.obs["target"].astype(str)) - {"non-targeting"})
    lib = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    median_lib = float(np.median(lib)) if lib.size else 0.0
    scale = np.divide(median_lib, lib, out=np.zeros_like(lib), where=lib > 0)
    X = sp.csr_matrix(sp.diags(scale) @ counts.astype(np.float64))
    X.data = np.log1p(X.data)
    obs = pd.DataFrame(
        {
            "perturbation": pd.Categorical(pert, categories=[_CONTROL, *knockouts]),
            "guide": obs_src["grna"].astype(str).astype("category").to_numpy(),
            "replicate": obs_src["bio_rep"].astype(str).astype("category").to_numpy(),
            "guide_fraction": obs_src["grna_umis_frac"].to_numpy(dtype=np.float64),
            "dose": np.ones(len(obs_src), dtype=np.float64),
        },
        index=obs_src.index.astype(str),
    )
    var_names = list(src.var_names.astype(str))
    return ad.AnnData(
        X=X.astype(np.float32),
        obs=obs,
        var=pd.DataFrame(index=pd.Index(var_names)),
        layers={"counts": counts},
        uns={
            "intended_targets": {_CONTROL: "", **{k: k for k in knockouts}},
            "measured_targets": sorted(k for k in knockouts if k in var_names),
            "control": _CONTROL,
            "dataset": "papalexi2021",
            "provenance": _PAPALEXI_PROVENANCE,
            "median_library_size": median_lib,
        },
    )


def papalexi_genes(adata: ad.AnnData, *, min_detected: float = 0.1) -> list[str]:
    """Genes to model in :func:`papalexi2021`: detected in controls plus measured targets.

    A gene is kept if its count is > 0 in at least ``min_detected`` of the control cells
    (``layers["counts"]``), or if it is a measured knocked-out gene
    (``uns["measured_targets"]``). Only control cells are read, so no knockout's cells
    influence the choice. With the defaults on ``papalexi2021()`` this gives 162 genes.

    Args:
        adata: the AnnData returned by :func:`papalexi2021` (or a subset of its cells).
        min_detected: minimum fraction of control cells with a non-zero count, in ``[0, 1]``.

    Returns:
        Gene names in ``var_names`` order.

    Raises:
        ValueError: if ``min_detected`` is outside ``[0, 1]`` or there are no control cells.
    """
    if not 0.0 <= float(min_detected) <= 1.0:
        raise ValueError(f"min_detected must be in [0, 1], got {min_detected}")
    control = adata.uns.get("control", _CONTROL)
    is_ctrl = (adata.obs["perturbation"].astype(str) == control).to_numpy()
    if not is_ctrl.any():
        raise ValueError(f"no control cells ({control!r}) in adata")
    counts = adata.layers["counts"][is_ctrl]
    detected = np.asarray((counts > 0).mean(axis=0)).ravel()
    measured = set(adata.uns.get("measured_targets", ()))
    names = adata.var_names.astype(str)
    return [g for g, d in zip(names, detected, strict=True) if d >= min_detected or g in measured]


def norman2019() -> ad.AnnData:
    """Load the Norman et al. (2019) K562 CRISPRa Perturb-seq subset bundled with causalpert.

    3,375 cells x 500 highly variable genes, log1p-normalised (no raw counts): 18 single-gene
    activations, 15 gene pairs and 100 control cells (provenance in
    ``causalpert/data/files/README.md``). For 5 pairs both singles are present
    (``uns["combo_test_pairs"]``): predict the pair from its parts.

    Returns:
        AnnData with ``n_obs = 3375``, ``n_vars = 500``:

        - ``X``: float32 log1p values as stored (CSR).
        - ``obs["perturbation"]``: categorical, genes joined by ``"+"`` in file order
          (e.g. ``"KLF1+MAP2K6"``), ``"control"`` for control cells; ``obs["dose"]``: 1.0.
          The source's other obs columns are kept.
        - ``uns["intended_targets"]``: dict perturbation -> its genes joined by ``"+"``
          (``""`` for control); ``uns["combo_test_pairs"]``: sorted pairs whose two singles are
          present; ``uns["control"] = "control"``, ``uns["dataset"] = "norman2019"``,
          ``uns["provenance"]``.

    Raises:
        RuntimeError: if the bundled file is missing or corrupt.

    Examples:
        >>> from causalpert.data.screens import norman2019
        >>> norman2019().uns["combo_test_pairs"][0]
        'KLF1+MAP2K6'
    """
    src = _read_bundled_h5ad(_NORMAN_FILE, _NORMAN_OBS, n_vars=500)
    pert = [_normalise_combo(str(p)) for p in src.obs["perturbation"]]
    names = sorted(set(pert) - {_CONTROL})
    singles = {p for p in names if "+" not in p}
    pairs = [p for p in names if "+" in p]
    obs = src.obs.copy()
    obs["perturbation"] = pd.Categorical(pert, categories=[_CONTROL, *names])
    obs["dose"] = np.ones(len(obs), dtype=np.float64)
    return ad.AnnData(
        X=sp.csr_matrix(src.X, dtype=np.float32),
        obs=obs,
        var=src.var.copy(),
        uns={
            "intended_targets": {_CONTROL: "", **{p: p for p in names}},
            "combo_test_pairs": [p for p in pairs if set(p.split("+")) <= singles],
            "control": _CONTROL,
            "dataset": "norman2019",
            "provenance": _NORMAN_PROVENANCE,
        },
    )


def _normalise_combo(label: str) -> str:
    """``"A+ctrl"`` -> ``"A"``, ``"ctrl"``/``""`` -> ``"control"``, ``"A + B"`` -> ``"A+B"``."""
    genes = [g.strip() for g in label.split("+")]
    genes = [g for g in genes if g and g.lower() not in {"ctrl", "control", "nan"}]
    return "+".join(genes) if genes else _CONTROL


def _read_bundled_h5ad(name: str, obs_cols: tuple[str, ...], *, n_vars: int) -> ad.AnnData:
    """Read and check a bundled h5ad; one-line RuntimeError if it is missing or corrupt."""
    resource = importlib.resources.files("causalpert.data") / "files" / name
    if not resource.is_file():
        raise RuntimeError(f"bundled {name} is missing: reinstall causalpert")
    try:
        with importlib.resources.as_file(resource) as path:
            adata = ad.read_h5ad(path)
    except Exception as err:  # h5py/anndata raise many types on a damaged file
        raise RuntimeError(
            f"bundled {name} is corrupt ({type(err).__name__}): reinstall causalpert"
        ) from err
    problem = None
    if adata.n_vars != n_vars or adata.n_obs == 0:
        problem = f"expected {n_vars} genes, got {adata.n_obs} × {adata.n_vars}"
    elif missing := [c for c in obs_cols if c not in adata.obs]:
        problem = f"missing obs columns {missing}"
    if problem:
        raise RuntimeError(f"bundled {name} is corrupt ({problem}): reinstall causalpert")
    return adata
