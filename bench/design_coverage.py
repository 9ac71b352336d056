"""What each design strategy's batches hit (a diagnostic with the simulator's truth, after a
run; nothing is chosen on it): per seed and strategy, the distinct genes the chosen
perturbations' true targets cover after rounds 0–4, and the mean number of true targets per
perturbation in the batches of rounds 1–3.

    python bench/design_coverage.py runs/s13/design-linear [--sim linear]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from causalpert.benchmark.protocols import paper_synthetic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a `causalpert benchmark --protocol design` --out")
    ap.add_argument("--sim", default="linear")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--strategies", default="acquisition,random,kcenter")
    args = ap.parse_args()
    for seed in (int(s) for s in args.seeds.split(",")):
        truth = paper_synthetic(sim=args.sim, seed=seed).truth_targets
        for strategy in args.strategies.split(","):
            chosen = [json.loads((args.run / "jobs" / f"design-{args.sim}-seed{seed}-"
                                  f"{strategy}-round{r}.json").read_text())["chosen"]
                      for r in range(5)]
            covered = [int(truth.loc[c].to_numpy().astype(bool).any(0).sum()) for c in chosen]
            per_drug = [truth.loc[[p for p in chosen[r] if p not in chosen[r - 1]]]
                        .to_numpy().sum(1).mean() for r in (1, 2, 3)]
            print(f"seed {seed} {strategy:<12} genes covered by round "
                  f"{' '.join(map(str, covered))}; targets per drug in batches 1-3 "
                  f"{' '.join(f'{v:.2f}' for v in per_drug)}")


if __name__ == "__main__":
    main()
