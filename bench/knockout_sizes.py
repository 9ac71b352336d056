"""How far each measured knocked-out gene of Papalexi 2021 falls in its own knockout's cells,
in control standard deviations (the figures quoted for ``knockout_size_rule``):

    python bench/knockout_sizes.py

Over the modelled genes (``papalexi_genes``), log-normalised values, all cells.
"""

from __future__ import annotations

from common import papalexi_modelled


def main() -> None:
    adata, x, pert, mu0, s0 = papalexi_modelled()
    genes = list(adata.var_names)
    print("gene      cells  control mean  control sd  z = -mean/sd  drop (sd)")
    for g in adata.uns["measured_targets"]:
        j = genes.index(g)
        drop = (x[pert == g][:, j].mean() - mu0[j]) / s0[j]
        print(f"{g:9s} {int((pert == g).sum()):5d}  {mu0[j]:12.2f}  {s0[j]:10.2f}  "
              f"{-mu0[j] / s0[j]:12.2f}  {drop:9.2f}")


if __name__ == "__main__":
    main()
