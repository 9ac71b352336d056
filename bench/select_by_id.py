"""Choose between GIM settings by a protocol's ``id`` split (held-out cells of training
conditions), never by its test perturbations: each candidate is fitted once on the protocol's
training cells; every test split without folds is scored, but only ``id`` chooses.

    OMP_NUM_THREADS=1 python bench/select_by_id.py --protocol norman2019 --weights 1 10 100
    OMP_NUM_THREADS=1 python bench/select_by_id.py --protocol papalexi2021 --methods gim gim-moments

``--weights``: ``gim-vstat`` with each moment weight (how ``gim-moments``' 10 was chosen on
Norman 2019); ``--methods``: benchmark methods as they are. One fit per candidate (≈ 2–4 min).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from causalpert.benchmark.evaluate import evaluate_prediction
from causalpert.benchmark.protocols import load_protocol
from causalpert.benchmark.runner import make_model
from causalpert.models.threads import torch_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", default="norman2019")
    parser.add_argument("--weights", type=float, nargs="*", default=[])
    parser.add_argument("--methods", nargs="*", default=[])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    candidates = [(m, m, {}) for m in args.methods]
    candidates += [(f"gim-vstat, moment_weight {w:g}", "gim-vstat", {"moment_weight": w})
                   for w in args.weights]
    if not candidates:
        parser.error("give --methods and/or --weights")
    pdata = load_protocol(args.protocol, sim=None, seed=args.seed)
    table = []
    for label, method, options in candidates:
        model = make_model(method, seed=args.seed, **options)
        with torch_threads():
            model.fit(pdata.train, progress=False, **pdata.fit_kwargs)
        row = {"candidate": label}
        for split, test in pdata.tests.items():
            rows = evaluate_prediction(model, test, pdata.x_control, split=split,
                                       seed=args.seed, metrics=("edist",))
            note = "" if split == "id" else " (not used)"
            row[f"{split}_edist{note}"] = float(np.mean([r["value"] for r in rows]))
        table.append(row)
        print(row, flush=True)
    out = pd.DataFrame(table)
    print(out.to_string(index=False))
    print(f"chosen by id edist: {out.loc[out['id_edist'].idxmin(), 'candidate']}")


if __name__ == "__main__":
    main()
