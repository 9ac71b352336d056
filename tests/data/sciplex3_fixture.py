"""A small generated data set with the obs schema of the published sciplex3 h5ad.

Counts x_ig ~ NB(mean = s_i · μ_g(line) · exp(Σ a_dg · H(c)), size 5) with cell size factors
s_i ~ LogNormal(0, 0.2), a line-specific baseline μ_g, per-drug log-fold changes a_dg on
min(25, d/4) target genes (±U[1, 2]) and a Hill response H(c) = c / (c + EC50_d) of the dose
c in nM.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

#: real compounds of the sciplex3 screen (names as in its product_name column), PubChem SMILES
DRUGS = {
    "Dexamethasone": "C[C@@H]1C[C@H]2[C@@H]3CCC4=CC(=O)C=C[C@@]4([C@]3([C@H](C[C@@]2"
                     "([C@]1(C(=O)CO)O)C)O)F)C",
    "Vorinostat (SAHA)": "ONC(=O)CCCCCCC(=O)Nc1ccccc1",
    "Belinostat (PXD101)": "O=C(/C=C/c1cccc(c1)S(=O)(=O)Nc1ccccc1)NO",
    "Panobinostat (LBH589)": "Cc1[nH]c2ccccc2c1CCNCc1ccc(/C=C/C(=O)NO)cc1",
    "Entinostat (MS-275)": "Nc1ccccc1NC(=O)c1ccc(CNC(=O)OCc2cccnc2)cc1",
    "Mocetinostat (MGCD0103)": "Nc1ccccc1NC(=O)c1ccc(CNc2nccc(n2)-c2cccnc2)cc1",
    "Dasatinib": "Cc1nc(Nc2ncc(s2)C(=O)Nc2c(C)cccc2Cl)cc(n1)N1CCN(CCO)CC1",
    "Imatinib": "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(n1)-c1cccnc1",
}
DMSO = "CS(C)=O"
#: molecules that are not in the fixture, for predicting unseen SMILES
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
CAFFEINE = "Cn1cnc2c1c(=O)n(C)c(=O)n2C"
DOSES_NM = (10.0, 100.0, 1000.0, 10000.0)
CELL_LINES = ("A549", "K562")


def make_sciplex3(
    *,
    n_genes: int = 300,
    cells_per_context: int = 25,
    vehicle_cells: int = 200,
    seed: int = 0,
    vehicle_style: str = "column",
    sparse: bool = True,
) -> ad.AnnData:
    """~2000 cells × ``n_genes`` integer counts over 2 cell lines, 8 drugs, 4 doses + vehicle.

    Args:
        vehicle_style: ``"column"`` (bool ``obs["vehicle"]`` and product_name "Vehicle"),
            ``"name"`` (product_name "Vehicle" only) or ``"control01"`` (``obs["control"]``
            0/1, product_name "control").
        sparse: store X as CSR (as the published file) or dense int64.

    Returns:
        AnnData with integer counts and ``uns["true_effects"]`` (drug × gene log-fold a_dg).
    """
    rng = np.random.default_rng(seed)
    drugs = list(DRUGS)
    effects = np.zeros((len(drugs), n_genes))
    for d in range(len(drugs)):
        k = min(25, n_genes // 4)
        genes = rng.choice(n_genes, k, replace=False)
        effects[d, genes] = rng.choice([-1, 1], k) * rng.uniform(1, 2, k)
    ec50 = 10 ** rng.uniform(1.5, 3, len(drugs))
    blocks, rows = [], []
    for line in CELL_LINES:
        base = rng.lognormal(0.5, 1.0, n_genes)
        conditions = [("Vehicle", 0.0, vehicle_cells)] + [
            (drug, dose, cells_per_context) for drug in drugs for dose in DOSES_NM]
        for drug, dose, n in conditions:
            logfc = 0.0 if dose == 0 else effects[drugs.index(drug)] * dose / (
                dose + ec50[drugs.index(drug)])
            mean = rng.lognormal(0, 0.2, (n, 1)) * base * np.exp(logfc)
            blocks.append(rng.negative_binomial(5, 5 / (5 + mean)))
            rows += [(line, drug, dose)] * n
    obs = pd.DataFrame(rows, columns=["cell_type", "product_name", "dose"])
    vehicle = (obs["product_name"] == "Vehicle").to_numpy()
    obs["SMILES"] = [DMSO if v else DRUGS[p] for v, p in zip(vehicle, obs["product_name"],
                                                              strict=True)]
    obs["replicate"] = rng.choice(["rep1", "rep2"], len(obs))
    if vehicle_style == "column":
        obs["vehicle"] = vehicle
    elif vehicle_style == "control01":
        obs["control"] = vehicle.astype(int)
        obs.loc[vehicle, "product_name"] = "control"
    elif vehicle_style != "name":
        raise ValueError(f"unknown vehicle_style {vehicle_style!r}")
    obs.index = [f"cell{i}" for i in range(len(obs))]
    x = np.vstack(blocks)
    var = pd.DataFrame(index=[f"ENSG{j:011d}" for j in range(n_genes)])
    truth = pd.DataFrame(effects, index=drugs, columns=var.index)
    return ad.AnnData(X=sp.csr_matrix(x) if sparse else x, obs=obs, var=var,
                      uns={"true_effects": truth})
