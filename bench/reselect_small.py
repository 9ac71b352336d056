"""Re-selection on the small design of ``tests/models/test_gim.py`` (d = 8, 12 training
perturbations), data seeds 1–3: false selected pairs, missed targets and target ECE of the
training perturbations with and without ``reselect_steps`` — the numbers the test's
docstring quotes (it asserts on data seed 2).

    OMP_NUM_THREADS=1 python bench/reselect_small.py     # ≈ 4 min
"""

from __future__ import annotations

import numpy as np

from causalpert.data import SyntheticDesign, simulate
from causalpert.metrics import expected_calibration_error
from causalpert.models import GIM

DESIGN = SyntheticDesign(d=8, n_features=12, n_train_perturbations=12, n_ood_perturbations=4,
                         n_control=300, n_test_cells=60)


def main() -> None:
    for data_seed in (1, 2, 3):
        adata = simulate("paper-synthetic", sim="linear", seed=data_seed, design=DESIGN)
        train = adata[adata.obs["split"] == "train"].copy()
        seen = adata.uns["perturbation_split"]["train"]
        truth = np.asarray(adata.uns["truth"]["targets"].loc[seen]).astype(bool)
        for steps in (0, 400):
            model = GIM(causal="linear", seed=0, steps=1000, refit_steps=400,
                        reselect_steps=steps).fit(train, progress=False)
            pi = model.target_probabilities(seen).to_numpy()
            sel = pi > 0.5
            print(f"data seed {data_seed}, reselect_steps={steps}: false selected "
                  f"{int((sel & ~truth).sum())}, missed {int((~sel & truth).sum())}, ECE "
                  f"{expected_calibration_error(pi.ravel(), truth.ravel()):.3f}", flush=True)


if __name__ == "__main__":
    main()
