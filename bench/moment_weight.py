"""Choose GIM's moment weight on Norman 2019 by its ``id`` split (held-out cells of training
conditions; the five test pairs are scored and printed but never used to choose).

    OMP_NUM_THREADS=1 python bench/moment_weight.py --weights 1 10 100 --seed 0

One ``gim-vstat`` fit per weight (≈ 3–4 min each on one core); prints id and combo edist.
"""

from __future__ import annotations

import argparse

import pandas as pd

from causalpert.benchmark.runner import run_one
from causalpert.models.threads import torch_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 10.0, 100.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = []
    for w in args.weights:
        with torch_threads():
            rows = pd.DataFrame(run_one("norman2019", None, "gim-vstat", args.seed,
                                        overrides={"gim-vstat": {"moment_weight": w}}))
        edist = rows[rows["metric"] == "edist"].groupby("split")["value"].mean()
        table.append({"moment_weight": w, "id_edist": edist["id"],
                      "combo_edist (not used)": edist["combo"]})
        print(table[-1], flush=True)
    out = pd.DataFrame(table)
    print(out.to_string(index=False))
    print(f"chosen by id edist: {out.loc[out['id_edist'].idxmin(), 'moment_weight']:g}")


if __name__ == "__main__":
    main()
