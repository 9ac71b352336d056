"""What each strategy knocked out on the knockout pool (a diagnostic with the simulator's truth,
after a run; nothing is chosen on it): per seed and strategy, the share of the true edges whose
source gene has been knocked out after rounds 0–4 (an intervention on the source is what
identifies an edge's direction), and the mean true out-degree of the genes picked in rounds
1–4 (the pool's mean for comparison).

    python bench/design_knockout_edges.py runs/s15/design-ko-linear --sim linear
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from causalpert.benchmark.design_protocol import KNOCKOUT_STRATEGIES, knockout_split
from causalpert.data.simulate import simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a `causalpert benchmark --protocol design "
                    "--pool knockouts` --out")
    ap.add_argument("--sim", default="linear")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--strategies", default=",".join(KNOCKOUT_STRATEGIES))
    args = ap.parse_args()
    for seed in (int(s) for s in args.seeds.split(",")):
        adata = simulate("knockout-screen", sim=args.sim, seed=seed)
        genes = [str(g) for g in adata.var_names]
        out_degree = dict(zip(genes, np.asarray(adata.uns["truth"]["adjacency"]).sum(1),
                              strict=True))
        total = sum(out_degree.values())
        pool, _ = knockout_split(genes, seed)
        print(f"seed {seed}: {total} true edges; pool mean out-degree "
              f"{np.mean([out_degree[g] for g in pool]):.2f}")
        for strategy in args.strategies.split(","):
            chosen = []
            for r in range(5):
                path = (args.run / "jobs" /
                        f"design-{args.sim}-knockouts-seed{seed}-{strategy}-round{r}.json")
                chosen.append(json.loads(path.read_text())["chosen"])
            share = [sum(out_degree[g] for g in c) / total for c in chosen]
            picked = [g for g in chosen[-1] if g not in chosen[0]]
            print(f"  {strategy:<12} edges with a knocked-out source by round "
                  f"{' '.join(f'{s:.2f}' for s in share)}; picks' mean out-degree "
                  f"{np.mean([out_degree[g] for g in picked]):.2f}")


if __name__ == "__main__":
    main()
