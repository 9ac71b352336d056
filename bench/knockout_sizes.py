"""How far each measured knocked-out gene of Papalexi 2021 falls in its own knockout's cells,
in control standard deviations (the figures quoted for ``knockout_size_rule``):

    python bench/knockout_sizes.py

Over the modelled genes (``papalexi_genes``), log-normalised values, all cells.
"""

from __future__ import annotations

from causalpert.data.prepare import dense_matrix
from causalpert.data.screens import papalexi2021, papalexi_genes


def main() -> None:
    adata = papalexi2021()
    adata = adata[:, papalexi_genes(adata)]
    x = dense_matrix(adata)
    pert = adata.obs["perturbation"].astype(str).to_numpy()
    ctrl = x[pert == "control"]
    mu0, s0 = ctrl.mean(0), ctrl.std(0)
    genes = list(adata.var_names)
    print("gene      cells  control mean  control sd  z = -mean/sd  drop (sd)")
    for g in adata.uns["measured_targets"]:
        j = genes.index(g)
        drop = (x[pert == g][:, j].mean() - mu0[j]) / s0[j]
        print(f"{g:9s} {int((pert == g).sum()):5d}  {mu0[j]:12.2f}  {s0[j]:10.2f}  "
              f"{-mu0[j] / s0[j]:12.2f}  {drop:9.2f}")


if __name__ == "__main__":
    main()
