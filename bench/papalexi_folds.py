"""Papalexi 2021 ``unseen_ko`` folds one by one: one default GIM fit per fold, the held-out
knockout scored with the genetic head (``genetic_head="cv"``, when the fit kept it) and with
it removed — the same fit, so the difference is the head's alone.

    OMP_NUM_THREADS=1 python bench/papalexi_folds.py --seed 1 --genes UBE2L6 STAT1  # ≈ 1 min each

Prints per fold: fit seconds, whether the head was kept, its CV errors, and edist /
delta_pearson_top50 with and without it. Point PYTHONPATH at another checkout's ``src`` to fit
a fold at that commit (the script uses only the protocol, ``make_model`` and the scorer).
"""

from __future__ import annotations

import argparse
import time

from causalpert.benchmark.protocols import load_protocol
from causalpert.benchmark.runner import _score_splits, make_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--genes", nargs="*", help="folds (knocked-out genes); default: all 9")
    args = ap.parse_args()
    pdata = load_protocol("papalexi2021", seed=args.seed)
    for fold in pdata.folds:
        if args.genes and fold.label not in args.genes:
            continue
        model = make_model("gim", seed=args.seed)
        t0 = time.perf_counter()
        model.fit(fold.train, progress=False, **pdata.fit_kwargs)
        secs = time.perf_counter() - t0
        scores = {}
        for variant in ("with head", "without"):
            if variant == "without":
                getattr(model, "heads_", {}).pop("genetic", None)
            rows = _score_splits(model, fold.tests, pdata, args.seed)
            scores[variant] = {r["metric"]: r["value"] for r in rows}
        gen = model.genetic_ or {}
        print(f"{fold.label:9s} fit {secs:4.0f} s  head kept {gen.get('head')}  CV "
              f"{gen.get('head_cv_error', float('nan')):.5f} vs none "
              f"{gen.get('head_cv_error_none', float('nan')):.5f}  " + "  ".join(
                  f"{v}: edist {s['edist']:.4f} dp50 {s['delta_pearson_top50']:.3f}"
                  for v, s in scores.items()), flush=True)


if __name__ == "__main__":
    main()
