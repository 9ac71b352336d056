"""Disagreement far from the training drugs vs at them (issue 13, ``cp.design``): the test
fixture of ``tests/test_design.py`` (paper-synthetic, d = 8, K = 3 GIM members at 600 + 200
steps), scored for training perturbations at a training dose and for new compounds whose
features are 3× those of the unseen ones; mean score of each group, per head kind and data
seed, with the members' head draws (``rank``'s default) and without:

    OMP_NUM_THREADS=1 python bench/design_far_seen.py      # ≈ 4 min
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

import causalpert as cp
from causalpert import GIM, Ensemble
from causalpert.data import simulate

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from test_design import DESIGN


def main() -> None:
    for head in ("cv", "ridge"):
        for data_seed in (1, 2):
            adata = simulate("paper-synthetic", sim="linear", seed=data_seed, design=DESIGN)
            train = adata[adata.obs["split"] == "train"].copy()
            ens = Ensemble(GIM(causal="linear", steps=600, refit_steps=200, feature_head=head),
                           n=3, seed=0)
            ens.fit(train, progress=False)
            F = adata.uns["perturbation_features"]
            seen = F.loc[list(adata.uns["perturbation_split"]["train"])]
            far = F.loc[list(adata.uns["perturbation_split"]["full_ood"])] * 3
            far.index = [f"far_{i}" for i in range(len(far))]
            for draws in (True, False):
                r = cp.design.rank(ens, pd.concat([seen, far]), doses=[1.0], k=4,
                                   head_draws=draws)
                is_far = r["candidate"].str.startswith("far_")
                print(f"heads={head} data_seed={data_seed} head_draws={draws}: far "
                      f"{r.loc[is_far, 'score'].mean():.3g}, seen "
                      f"{r.loc[~is_far, 'score'].mean():.3g}", flush=True)


if __name__ == "__main__":
    main()
