"""sciplex3 (Srivatsan et al. 2020) → AnnData ready for ``model.fit`` (protocol ``sciplex3``).

The file is not bundled (~650k cells); pass the published h5ad (or an AnnData read from it).
"""

from __future__ import annotations

import os
import warnings

import anndata as ad
import numpy as np
import pandas as pd

from .backed import read_anndata
from .normalize import log_normalise, top_variable_genes
from .smiles import SmilesFeaturizer
from .splits import dose_and_drug_split

#: obs columns tried, in order, when the key is not given
CELL_LINE_KEYS = ("cell_type", "cell_line")
SMILES_KEYS = ("SMILES", "smiles", "canonical_smiles")
VEHICLE_KEYS = ("vehicle", "control")
VEHICLE_NAMES = ("vehicle", "control", "dmso")
NANOMOLAR = {"nM": 1.0, "uM": 1e3, "µM": 1e3, "mM": 1e6}


def _find_key(obs: pd.DataFrame, key: str | None, candidates, what: str) -> str | None:
    if key is not None and key not in obs:
        raise ValueError(f"obs key {key!r} ({what}) not found; available columns: "
                         f"{list(obs.columns)}")
    return key if key is not None else next((k for k in candidates if k in obs), None)


def _truthy(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.fillna(0).astype(float).to_numpy() != 0
    return column.astype(str).str.strip().str.lower().isin(["true", "t", "1", "yes"]).to_numpy()


def vehicle_mask(obs: pd.DataFrame, *, drug_key: str, vehicle_key: str | None = None):
    """Vehicle (control) cells [N] bool: ``obs[vehicle_key]`` if given, else the first of
    ``obs["vehicle"]``, ``obs["control"]`` (bool, 0/1 or "True"/"False"), else
    ``obs[drug_key]`` equal to "Vehicle", "control" or "DMSO" (any case)."""
    key = _find_key(obs, vehicle_key, VEHICLE_KEYS, "vehicle flag")
    if key is not None:
        return _truthy(obs[key])
    return obs[drug_key].astype(str).str.strip().str.lower().isin(VEHICLE_NAMES).to_numpy()


def _drug_smiles(obs: pd.DataFrame, drugs: np.ndarray, smiles_key: str) -> dict[str, str]:
    """One SMILES string per drug; one-line error for a drug with none or several."""
    table = pd.DataFrame({"drug": drugs, "smiles": obs[smiles_key].to_numpy()}).dropna()
    table = table[table["smiles"].astype(str).str.strip() != ""].drop_duplicates()
    counts = table.groupby("drug").size()
    if (counts > 1).any():
        drug = counts.index[counts > 1][0]
        raise ValueError(f"drug {drug!r} has {counts[drug]} different SMILES in "
                         f"obs[{smiles_key!r}]: give each drug one SMILES string")
    missing = sorted(set(drugs) - set(table["drug"]))
    if missing:
        raise ValueError(f"{len(missing)} drug(s) have no SMILES in obs[{smiles_key!r}], e.g. "
                         f"{missing[:3]}: fill them in or pass fingerprints=False")
    return dict(zip(table["drug"], table["smiles"].astype(str), strict=True))


def _want_fingerprints(fingerprints: bool | None) -> bool:
    if fingerprints is not None:
        return fingerprints
    try:
        import rdkit  # noqa: F401
    except ImportError:
        warnings.warn('RDKit is not installed, so no Morgan features: fit will use one-hot '
                      'codes (pip install "causalpert[chem]")', stacklevel=3)
        return False
    return True


def read_sciplex3(
    path_or_adata,
    *,
    cell_line: str = "A549",
    n_genes: int = 50,
    layer: str | None = None,
    normalize: bool | None = None,
    fingerprints: bool | None = None,
    radius: int = 2,
    n_bits: int = 2048,
    held_out_dose: float | None = None,
    ood_fraction: float = 0.2,
    id_fraction: float = 0.1,
    seed: int = 0,
    drug_key: str = "product_name",
    dose_key: str = "dose",
    dose_unit: str = "nM",
    cell_line_key: str | None = None,
    smiles_key: str | None = None,
    vehicle_key: str | None = None,
) -> ad.AnnData:
    """One cell line of sciplex3, log-normalised, on its top variable genes, ready for ``fit``.

    Accepted layout (the published h5ad): ``obs[drug_key]`` (drug name), ``obs[dose_key]``
    (dose in ``dose_unit``), a cell-line column (``cell_type`` or ``cell_line``), a SMILES
    column (``SMILES``, ``smiles`` or ``canonical_smiles``; optional), and a vehicle flag:
    ``obs["vehicle"]`` or ``obs["control"]`` (bool or 0/1), else the drug name "Vehicle",
    "control" or "DMSO" (see ``vehicle_mask``).

    Recipe: keep ``cell_line``; log-normalise (``normalize_total`` to 1e4 then ``log1p``, see
    ``normalize.log_normalise`` for the rule that detects already log-normalised data); keep
    the ``n_genes`` most variable genes (``scanpy.pp.highly_variable_genes``, flavor "seurat");
    dose c = log10(dose in nM) / 4, so 10 nM → 0.25 … 10 µM → 1 (vehicle: 0; doses < 1 nM
    are an error); splits from ``splits.dose_and_drug_split`` on the dose in nM.

    Args:
        path_or_adata: path of the h5ad file, or an AnnData (not modified).
        cell_line: the cell line to keep (A549, K562 or MCF7 in the paper).
        n_genes: number of highly variable genes d.
        layer: read counts from this layer instead of ``X``.
        normalize: True / False force or skip log-normalisation; None decides by the rule.
        fingerprints: Morgan features; None → when RDKit is installed (else a warning).
        radius, n_bits: Morgan fingerprint settings.
        held_out_dose: partial-OOD dose in nM (default: the highest).
        ood_fraction, seed: fraction of drugs held out for full OOD, and its seed.
        id_fraction: fraction of the cells of every training context held out as ``id``.
        drug_key, dose_key, dose_unit: drug and dose columns; unit "nM", "uM"/"µM" or "mM".
        cell_line_key, smiles_key, vehicle_key: column names, when not the defaults above.

    Returns:
        AnnData cells × n_genes, ``X`` float32 log-normalised (counts in ``layers["counts"]``
        when the input was counts), the input obs plus ``perturbation`` ("control" for vehicle
        cells, else the drug name), ``dose`` (scaled; it replaces the input dose, which is kept
        in nM as ``dose_nM``, 0 for vehicle) and ``split``; ``uns``:
        ``smiles`` {drug: SMILES}, ``perturbation_features`` (drug × n_bits) and
        ``featurizer`` (spec for ``fit``) with fingerprints, ``split_info``, ``cell_line``,
        ``dataset = "sciplex3"``, ``control = "control"``.
    """
    if isinstance(path_or_adata, str | os.PathLike):
        if not os.path.isfile(path_or_adata):
            raise FileNotFoundError(f"no sciplex3 file at {os.fspath(path_or_adata)!r}: pass "
                                    "the path of the published h5ad")
        path_or_adata = read_anndata(path_or_adata)
    if not isinstance(path_or_adata, ad.AnnData):
        raise TypeError(f"expected a path or an AnnData, got {type(path_or_adata).__name__}")
    if dose_unit not in NANOMOLAR:
        raise ValueError(f"dose_unit must be one of {list(NANOMOLAR)}, got {dose_unit!r}")
    obs = path_or_adata.obs
    _find_key(obs, drug_key, (), "drug name")
    _find_key(obs, dose_key, (), "dose")
    line_key = _find_key(obs, cell_line_key, CELL_LINE_KEYS, "cell line")
    if line_key is None:
        raise ValueError(f"no cell-line column (tried {list(CELL_LINE_KEYS)}): pass "
                         "cell_line_key=")
    keep = obs[line_key].astype(str).to_numpy() == cell_line
    if not keep.any():
        raise ValueError(f"no cells of cell line {cell_line!r}; obs[{line_key!r}] has "
                         f"{sorted(obs[line_key].astype(str).unique())[:10]}: pass one of them")
    adata = path_or_adata[keep].copy()
    obs = adata.obs
    vehicle = vehicle_mask(obs, drug_key=drug_key, vehicle_key=vehicle_key)
    if not vehicle.any():
        raise ValueError(f"no vehicle cells in {cell_line}: mark them in obs['vehicle'] or "
                         f"obs['control'], name them 'Vehicle' in obs[{drug_key!r}], or pass "
                         "vehicle_key=")
    if (obs[drug_key].isna().to_numpy() & ~vehicle).any():
        raise ValueError(f"drug-treated cells without a name in obs[{drug_key!r}]: name or "
                         "drop them")
    drugs = obs[drug_key].astype(str).to_numpy()
    nm = pd.to_numeric(obs[dose_key], errors="coerce").to_numpy(dtype=np.float64)
    nm = np.where(vehicle, 0.0, nm * NANOMOLAR[dose_unit])
    bad = ~vehicle & ~(nm >= 1)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} drug-treated cells have a dose below 1 nM or none "
                         f"(e.g. {obs[dose_key].to_numpy()[bad][0]!r} {dose_unit}): log10(nM)/4 "
                         "needs doses ≥ 1 nM; drop those cells or fix dose_unit")
    x, counts = log_normalise(adata, layer=layer, normalize=normalize)
    genes = top_variable_genes(x, n_genes)
    out = ad.AnnData(X=x[:, genes].toarray().astype(np.float32), obs=obs.copy(),
                     var=adata.var.iloc[genes].copy())
    if counts is not None:
        out.layers["counts"] = counts[:, genes].toarray().astype(np.float32)
    out.obs["perturbation"] = pd.Categorical(np.where(vehicle, "control", drugs))
    out.obs["dose_nM"] = nm
    out.obs["dose"] = np.where(vehicle, 0.0, np.log10(np.maximum(nm, 1.0)) / 4.0)
    split = dose_and_drug_split(out.obs, dose_key="dose_nM", held_out_dose=held_out_dose,
                                ood_fraction=ood_fraction, id_fraction=id_fraction, seed=seed)
    out.obs["split"] = split
    treated = out.obs["perturbation"].astype(str) != "control"
    out.uns.update(dataset="sciplex3", cell_line=cell_line, control="control", split_info={
        "held_out_dose_nM": float(out.obs.loc[split == "partial_ood", "dose_nM"].max()),
        "full_ood_drugs": sorted(set(drugs[(split == "full_ood").to_numpy()])),
        "ood_fraction": ood_fraction, "id_fraction": id_fraction, "seed": seed})
    skey = _find_key(obs, smiles_key, SMILES_KEYS, "SMILES")
    if skey is not None:
        out.uns["smiles"] = _drug_smiles(obs[treated.to_numpy()], drugs[treated.to_numpy()], skey)
    if _want_fingerprints(fingerprints):
        if skey is None:
            raise ValueError(f"no SMILES column (tried {list(SMILES_KEYS)}): pass smiles_key= "
                             "or fingerprints=False")
        featurizer = SmilesFeaturizer(radius=radius, n_bits=n_bits)
        out.uns["perturbation_features"] = featurizer(out.uns["smiles"])
        out.uns["featurizer"] = featurizer.to_dict()
    return out
