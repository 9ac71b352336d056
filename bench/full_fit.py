"""One full default GIM fit (``cp.GIM(causal="linear")``, all stages) on a random screen of
``N`` cells × ``d`` genes, in this process, reported as one JSON line on stdout:

    OMP_NUM_THREADS=1 python bench/full_fit.py --n 100000 --d 1000

Reports the fit's wall time, its stages (stage 1, the refit rounds, the rest: setup, noise
calibration, heads, target evidence), the stability penalty's share of the training loops
(its own wall time, refreshes included, timed inside the loops / the loops' time), the fitted
drift's largest real eigenvalue and ``stability_scale_`` (1: the penalty alone kept W Hurwitz),
and this process's own peak RSS (``VmHWM``). ``fit_scaling``'s data: 50 contexts (control + 49
perturbations at dose 1), 1–3 shifted genes each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def full_fit(n: int, d: int, seed: int = 0) -> dict:
    import torch

    import causalpert as cp
    from causalpert.models import gim
    from training import _peak_rss, _scaling_adata

    t0 = time.perf_counter()
    adata = _scaling_adata(n, d)
    data_s = time.perf_counter() - t0
    spent = {"stability_s": 0.0, "calls": 0, "refreshes": 0}
    call = gim._StabilityPenalty.__call__

    def timed(self, drift):
        t = time.perf_counter()
        out = call(self, drift)
        spent["refreshes"] += int(self.refreshed)
        spent["stability_s"] += time.perf_counter() - t
        spent["calls"] += 1
        return out

    loops: list[tuple[int, float]] = []  # (steps, seconds) of each training loop
    train = gim.train

    def timed_train(*args, **kw):
        hist = train(*args, **kw)
        loops.append((kw["steps"], hist.seconds))
        return hist

    gim._StabilityPenalty.__call__, gim.train = timed, timed_train
    try:
        model = cp.GIM(causal="linear", seed=seed)
        t0 = time.perf_counter()
        model.fit(adata, progress=False)
        fit_s = time.perf_counter() - t0
    finally:
        gim._StabilityPenalty.__call__, gim.train = call, train
    loop_s = sum(t for _, t in loops)
    steps = sum(k for k, _ in loops)
    peak, source = _peak_rss()
    return {
        "n_cells": adata.n_obs, "d": d, "fit_s": fit_s, "data_s": data_s,
        "loops": loops, "loop_s": loop_s, "steps": steps, "step_s": loop_s / steps,
        "other_s": fit_s - loop_s,
        "stability_s": spent["stability_s"], "stability_calls": spent["calls"],
        "stability_refreshes": spent["refreshes"],
        "stability_share": spent["stability_s"] / loop_s,
        "max_real_eigenvalue": cp.core.max_real_eigenvalue(model.drift.W),
        "stability_scale": model.stability_scale_,
        "peak_rss_gb": peak, "rss_source": source,
        "torch_threads": torch.get_num_threads(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out, sys.stdout = sys.stdout, sys.stderr  # only the JSON line goes to stdout
    print(json.dumps(full_fit(args.n, args.d, args.seed)), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
