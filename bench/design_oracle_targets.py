"""Diagnostic with the simulator's truth (it sets nothing): would the design acquisition beat
random on the graph curve if it knew every candidate's targets, as in a knockout screen?
Session 13 found the heads' target predictions for the pool at chance in the first rounds, so
the edge term g(e) = Σ_g V_g π̄_g(e) / (n_g + π̄_g(e)) could not aim at uncovered genes. Here
``design._target_terms`` is patched so that π̄(e) is the candidate's true target set and n_g
the chosen perturbations' true hits; the rest of the rule (disagreement, density, diversity,
γ = 1) is the default. Strategy ``acquisition`` of protocol ``design`` with that patch, in its
own output directory (compare with ``random-mean`` of a run with random draws).

    OMP_NUM_THREADS=1 python bench/design_oracle_targets.py --sim linear \
        --out runs/s14/design-oracle-linear       # ≈ 30 min on one core
"""

from __future__ import annotations

import argparse

import causalpert.design as design
from causalpert.benchmark import design_protocol as dp
from causalpert.benchmark.protocols import paper_synthetic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", default="linear")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    original = design._target_terms
    try:
        for seed in (int(s) for s in args.seeds.split(",")):
            truth = paper_synthetic(sim=args.sim, seed=seed).truth_targets.astype(float)

            def oracle(model, names, kw, truth=truth):
                sd, _, V, _ = original(model, names, kw)
                seen = list(model.target_probabilities().index)
                return sd, truth.loc[names].to_numpy(), V, truth.loc[seen].to_numpy().sum(0)

            design._target_terms = oracle
            res = dp.run_design_benchmark(sim=args.sim, seed=seed, strategies=("acquisition",),
                                          gim_options=dp.steps_options(args.steps),
                                          out=args.out)
            auc = res[res["metric"].isin(["graph_auprc_auc", "edist_auc", "edist_test_auc"])]
            for _, r in auc.iterrows():
                print(f"{args.sim} seed {seed} oracle-target acquisition {r['metric']} "
                      f"{r['value']:.3f}", flush=True)
    finally:
        design._target_terms = original


if __name__ == "__main__":
    main()
