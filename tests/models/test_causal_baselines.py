"""free-causal and oracle: behaviour on a small seeded problem and checkpoint round trips."""

import numpy as np
import pandas as pd
import pytest

from causalpert.data import SyntheticDesign, simulate
from causalpert.models import MODELS, PerturbationModel

DESIGN = SyntheticDesign(d=6, n_features=8, n_train_perturbations=8, n_ood_perturbations=3,
                         n_control=200, n_test_cells=40)


@pytest.fixture(scope="module")
def data():
    adata = simulate("paper-synthetic", sim="linear", seed=2, design=DESIGN)
    return adata, adata[adata.obs["split"] == "train"].copy()


@pytest.mark.parametrize("name", ["free-causal", "oracle"])
def test_save_load_roundtrip(data, name, tmp_path):
    _, train = data
    kw = {"steps": 100} if name == "free-causal" else {}
    model = MODELS[name](seed=0, **kw).fit(train, progress=False)
    model.save(tmp_path / name)
    loaded = PerturbationModel.load(tmp_path / name)
    perts = ["pert_01", "pert_09"]  # one seen, one new (features only)
    np.testing.assert_allclose(model.predict(perts, 1.0, n_cells=15, seed=1).X,
                               loaded.predict(perts, 1.0, n_cells=15, seed=1).X, rtol=1e-6)
    pd.testing.assert_frame_equal(model.target_probabilities(perts),
                                  loaded.target_probabilities(perts))
    pd.testing.assert_frame_equal(model.graph(), loaded.graph())


def test_oracle_scores_the_truth(data):
    adata, train = data
    oracle = MODELS["oracle"](seed=0).fit(train, progress=False)
    truth = adata.uns["truth"]["targets"]
    probs = oracle.target_probabilities(list(truth.index))
    assert np.array_equal(probs.to_numpy() == 1, truth.to_numpy())
    with pytest.raises(ValueError, match="knows only simulated perturbations"):
        oracle.predict(["made_up"], 1.0, features=adata.uns["perturbation_features"].iloc[:1]
                       .set_axis(["made_up"]))


def test_free_causal_scores_true_targets_above_chance(data):
    adata, train = data
    model = MODELS["free-causal"](seed=0, steps=600).fit(train, progress=False)
    from causalpert.metrics import target_auroc

    seen = adata.uns["perturbation_split"]["train"]
    truth = adata.uns["truth"]["targets"].loc[seen]
    assert target_auroc(model.target_probabilities(seen).to_numpy(), truth.to_numpy()) > 0.7
