"""Why the acquisition picks the knockouts it picks (a diagnostic with the simulator's truth;
nothing is chosen on it): refit the knockout pool's round-0 ensemble (the protocol's start set,
K = 3, ``--steps``), rank the remaining pool with ``design.rank``'s defaults, and report per
term — the cells' disagreement ``score``, the information density, the edge term
``edge_gain``, the combined ``value`` and the final rank — its Spearman correlation with the
candidate's true out-degree (how many edges a knockout of it would expose), plus the members'
out-edge variance V_g against the true out-degree over all genes.

    OMP_NUM_THREADS=1 python bench/design_knockout_rank.py --sim linear --seed 0 --steps 1000
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import spearmanr

import causalpert as cp
from causalpert.benchmark import design_protocol as dp
from causalpert.design import edge_variance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", default="linear")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--members", type=int, default=3)
    args = ap.parse_args()
    data = dp._knockout_pool(args.sim, args.seed, None)
    first = dp.start_set(data.pool, dp.POOL_SIZES["knockouts"][0], args.seed)
    labels = data.train.obs["perturbation"].astype(str).to_numpy()
    cells = data.train[np.isin(labels, ["control", *first])].copy()
    ens = cp.Ensemble(cp.GIM(causal=args.sim, seed=args.seed, **dp.steps_options(args.steps)),
                      n=args.members, seed=args.seed)
    ens.fit(cells, progress=False, **data.fit_kwargs)
    adata = cp.simulate("knockout-screen", sim=args.sim, seed=args.seed)
    genes = [str(g) for g in adata.var_names]
    out_degree = dict(zip(genes, np.asarray(adata.uns["truth"]["adjacency"]).sum(1),
                          strict=True))
    remaining = [g for g in data.pool if g not in first]
    ranked = cp.design.rank(ens, remaining, doses=(1.0,), k=4, seed=args.seed, progress=False)
    deg = ranked["candidate"].map(out_degree).to_numpy(dtype=float)
    print(f"{args.sim} seed {args.seed}: start set {first}; {len(remaining)} candidates, "
          f"true out-degree mean {deg.mean():.2f}")
    for col in ("score", "density", "edge_gain", "value"):
        rho = spearmanr(ranked[col], deg).statistic
        print(f"  Spearman({col}, out-degree) = {rho:+.2f}")
    print(f"  Spearman(-rank, out-degree) = {spearmanr(-ranked['rank'], deg).statistic:+.2f}; "
          f"picks {ranked.loc[ranked['selected'], 'candidate'].tolist()} out-degree "
          f"{deg[ranked['selected'].to_numpy()].tolist()}")
    V = edge_variance(ens.graph_sd().to_numpy())
    all_deg = np.array([out_degree[g] for g in genes], dtype=float)
    seen = np.isin(genes, first)
    print(f"  Spearman(V_g, out-degree) over genes not knocked out: "
          f"{spearmanr(V[~seen], all_deg[~seen]).statistic:+.2f}; V_g of knocked-out genes "
          f"{V[seen].mean():.3g} vs others {V[~seen].mean():.3g}")
    W = np.abs(ens.graph().to_numpy())
    print(f"  Spearman(learned out-strength, out-degree) over genes not knocked out: "
          f"{spearmanr(W.sum(1)[~seen], all_deg[~seen]).statistic:+.2f}")


if __name__ == "__main__":
    main()
