"""Wall time of a K-member ``Ensemble`` fit against K single GIM fits run the same way (issue 13:
the ratio must stay ≤ 1.2, no hidden serial overhead):

    OMP_NUM_THREADS=1 python bench/ensemble_cost.py [--k 5] [--workers 1] [--executor local]

Both sides fit K linear GIMs (seeds 0 … K−1, ``--steps`` / ``--refit-steps``, default 1,000 /
400: a stated cap on the default 3,000 / 1,000) on the paper-synthetic training cells (d = 20,
8,800 cells) through the same executor with the same workers. The singles are the cheapest
possible run: each job fits on all cells and returns nothing. The ensemble adds what it needs:
the bootstrap resample (a new AnnData per member), each member's checkpoint sent back and the
members rebuilt from it. The sides alternate ``--repeats`` times; the ratio uses each side's
fastest run (the machine is shared, so the minimum is the least disturbed). Prints JSON, with
the 1-minute load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import causalpert as cp
from causalpert.executors import get_executor


def _single(job: dict) -> None:
    """One plain GIM fit on all cells (the executor job of the singles)."""
    from causalpert.models.threads import torch_threads

    with torch_threads():
        cp.GIM(seed=job["seed"], **job["options"]).fit(job["adata"], progress=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--executor", default="local")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--refit-steps", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    adata = cp.simulate("paper-synthetic", sim="linear", seed=0)
    train = adata[adata.obs["split"] == "train"].copy()
    options = {"causal": "linear", "steps": a.steps, "refit_steps": a.refit_steps}
    run = get_executor(a.executor)
    singles, ensembles = [], []
    load_start = os.getloadavg()[0]
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        run(_single, [{"seed": i, "options": options, "adata": train} for i in range(a.k)],
            workers=a.workers)
        singles.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        cp.Ensemble(cp.GIM(**options), n=a.k, seed=0, executor=a.executor,
                    workers=a.workers).fit(train, progress=False)
        ensembles.append(time.perf_counter() - t0)
    out = {"k": a.k, "executor": a.executor, "workers": a.workers, "d": train.n_vars,
           "cells": train.n_obs, "steps": a.steps, "refit_steps": a.refit_steps,
           "singles_runs_s": [round(s, 2) for s in singles],
           "ensemble_runs_s": [round(s, 2) for s in ensembles],
           "ensemble_s": round(min(ensembles), 2), "singles_s": round(min(singles), 2),
           "ratio": round(min(ensembles) / min(singles), 3),
           "load_1min_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
