"""Repeated cells and GIM's target evidence (session 12): the rank of each weak knockout's own
gene on Papalexi 2021's ``targets`` split (opaque labels, no prior), for the members of a
bootstrap ensemble, with the evidence on the resample as drawn (a repeated cell counted as
often as it appears — the code before session 12) and on its distinct cells (now).

    OMP_NUM_THREADS=1 python bench/repeated_cells.py --seed 2 [--members 0,1,2]   # ≈ 4 min

Member i is fitted as ``gim-ensemble``'s member i (``bootstrap_indices(…, seed, i)``, GIM seed
seed + i). Only knockouts for which the member selects no gene (π ≤ 0.5 everywhere) are
listed: their ranking is the evidence's.
"""

from __future__ import annotations

import argparse

from causalpert.benchmark.protocols import papalexi2021
from causalpert.data.prepare import _doses
from causalpert.models import GIM
from causalpert.models import gim as gim_module
from causalpert.models.ensemble import _resample, bootstrap_indices


class TwoEvidences(GIM):
    """GIM that also keeps ``evidence_repeats_``: the evidence with every row counted."""

    def _fit_target_evidence(self, z, pert, pidx, Fz, doses):
        distinct = gim_module._first_occurrences
        gim_module._first_occurrences = lambda x: x  # the resample as drawn
        try:
            super()._fit_target_evidence(z, pert, pidx, Fz, doses)
        finally:
            gim_module._first_occurrences = distinct
        self.evidence_repeats_ = self.target_evidence_
        super()._fit_target_evidence(z, pert, pidx, Fz, doses)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--members", default="0,1,2")
    args = ap.parse_args()
    pdata = papalexi2021(seed=args.seed)
    cells = pdata.fit_all
    pert = cells.obs["perturbation"].astype(str).to_numpy()
    dose = _doses(cells, None, pert == "control")
    genes = list(cells.var_names)
    for i in (int(m) for m in args.members.split(",")):
        rows = bootstrap_indices(pert, dose, args.seed, i)
        model = TwoEvidences(seed=args.seed + i).fit(_resample(cells, rows, None),
                                                     progress=False, **pdata.fit_all_kwargs)
        for name, gene in pdata.intended_targets.items():
            if (model.target_probabilities([name]).loc[name] > 0.5).any():
                continue
            j, p = genes.index(gene), model.seen_.index(name)
            ranks = [int((R[p] > R[p, j]).sum()) + 1
                     for R in (model.evidence_repeats_, model.target_evidence_)]
            print(f"member {i} {name} ({gene}): rank {ranks[0]} with repeats, {ranks[1]} on "
                  f"distinct cells", flush=True)


if __name__ == "__main__":
    main()
