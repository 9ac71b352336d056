"""Why a mean-shift (or mRNA-only causal) ranking cannot put JAK2 or IFNGR2 first among their
own knockouts' targets on Papalexi 2021: the mean shift of the IFNγ pathway's measured genes
in each pathway knockout, in control standard deviations.

    python bench/pathway_shifts.py

Over the modelled genes (``papalexi_genes``), log-normalised values, all cells. JAK2 is itself
interferon-induced: it falls about as far in the IFNGR1, IFNGR2 and STAT1 knockouts as in its
own, and IFNGR2 *rises* in the other pathway knockouts (feedback) but falls in its own.
"""

from __future__ import annotations

from common import papalexi_modelled

KNOCKOUTS = ("IFNGR1", "IFNGR2", "JAK2", "STAT1", "IRF1")
GENES = ("IFNGR2", "JAK2", "STAT1", "PSMB9", "UBE2L6")


def main() -> None:
    adata, x, pert, mu0, s0 = papalexi_modelled()
    idx = [list(adata.var_names).index(g) for g in GENES]
    print("knockout  cells " + " ".join(f"{g:>7s}" for g in GENES))
    for ko in KNOCKOUTS:
        z = (x[pert == ko].mean(0) - mu0) / s0
        print(f"{ko:9s} {int((pert == ko).sum()):5d} " + " ".join(f"{z[j]:7.2f}" for j in idx))


if __name__ == "__main__":
    main()
