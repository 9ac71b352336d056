"""cProfile of one short GIM fit on the paper-sized screen at ``d`` genes (where the time goes).

    OMP_NUM_THREADS=1 python bench/profile_fit.py --d 1000 --steps 60 --refit-steps 40

Prints the fit's wall time and the 35 most expensive calls by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import causalpert as cp
from causalpert.models.threads import torch_threads
from training import paper_sized_screen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--refit-steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    adata = paper_sized_screen(args.d, seed=args.seed)
    model = cp.GIM(causal="linear", seed=args.seed, steps=args.steps,
                   refit_steps=args.refit_steps)
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    with torch_threads():
        profile.enable()
        model.fit(adata, progress=False)
        profile.disable()
    print(f"{adata.n_obs:,} cells × {adata.n_vars:,} genes: fit {time.perf_counter() - t0:.1f} s")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
