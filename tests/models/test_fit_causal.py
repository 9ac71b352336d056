"""Fitting the causal model with known targets recovers a known graph."""

import numpy as np
import pytest
import torch

from causalpert.benchmark import known_targets_targets
from causalpert.data import SyntheticDesign, simulate
from causalpert.data.prepare import prepare
from causalpert.metrics import graph_auprc
from causalpert.models import FitConfig, FitDivergedError, fit_causal
from causalpert.models.training import train


@pytest.fixture(scope="module")
def single_target_d10():
    adata = simulate("single-target", sim="linear", seed=0, design=SyntheticDesign(d=10))
    ctx = prepare(adata)
    return adata, ctx, known_targets_targets(adata, ctx)


def test_linear_known_targets_recovers_graph(single_target_d10):
    adata, ctx, targets = single_target_d10
    fit = fit_causal(ctx, targets, config=FitConfig(steps=800), seed=0, progress=False)
    auprc = graph_auprc(np.abs(fit.graph()), adata.uns["truth"]["adjacency"])
    assert auprc >= 0.9, auprc
    # the fitted shifts land on the true targets with the right sign
    u = fit.interventions.shift.numpy()
    truth = adata.uns["truth"]["effects"]
    for k, name in enumerate(ctx.perturbations[1:], start=1):
        j = int(np.flatnonzero(targets[k])[0])
        assert np.sign(u[k, j]) == np.sign(truth.loc[name].iloc[j])
    assert fit.history.terms["loss"][-1] < 0.2 * fit.history.terms["loss"][0]


def test_mlp_known_targets_learns_edges(single_target_d10):
    adata, ctx, targets = single_target_d10
    fit = fit_causal(ctx, targets, causal="mlp", config=FitConfig(steps=400), seed=0,
                     progress=False)
    auprc = graph_auprc(fit.graph(), adata.uns["truth"]["adjacency"])
    density = adata.uns["truth"]["adjacency"].sum() / 90
    assert auprc > 2 * density, (auprc, density)


def test_fit_is_reproducible(single_target_d10):
    _, ctx, targets = single_target_d10
    cfg = FitConfig(steps=30)
    a = fit_causal(ctx, targets, config=cfg, seed=5, progress=False)
    b = fit_causal(ctx, targets, config=cfg, seed=5, progress=False)
    assert np.array_equal(a.graph(), b.graph())


def test_bad_targets(single_target_d10):
    _, ctx, targets = single_target_d10
    with pytest.raises(ValueError, match=r"targets must be \[11, 10\]"):
        fit_causal(ctx, targets[:, :3], progress=False)
    bad = targets.copy()
    bad[0, 0] = True
    with pytest.raises(ValueError, match="control context cannot have"):
        fit_causal(ctx, bad, progress=False)


def test_training_loop_stops_on_a_non_finite_loss():
    p = torch.nn.Parameter(torch.ones(2))

    def loss_fn(step):
        return {"loss": (p**2).sum() * (float("inf") if step == 3 else 1.0)}

    with pytest.raises(FitDivergedError, match="not finite at step 3"):
        train([p], loss_fn, steps=10, lr=0.1, progress=False)


def test_training_loop_minimises_and_logs_every_term():
    p = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
    hist = train([p], lambda s: {"loss": ((p - 1) ** 2).sum(), "p0": p[0]}, steps=300, lr=0.1,
                 log_every=10, progress=False)
    assert torch.allclose(p.detach(), torch.ones(2), atol=1e-2)
    assert hist.step[0] == 0 and hist.step[-1] == 299 and len(hist.terms["p0"]) == len(hist.step)


def test_median_bandwidth_is_positive_when_most_cells_are_identical():
    """Sparse counts or constant genes make most control pairs identical: a median distance
    of 0 would make every kernel NaN (found by tests/test_fuzz.py: GIM on one constant gene)."""
    from causalpert.models.causal import median_bandwidth

    x = torch.zeros(6, 2)
    assert median_bandwidth(x) == 1.0
    x[0] = torch.tensor([3.0, 4.0])  # 5 of 15 pairs at distance 5, the rest 0
    assert median_bandwidth(x) == pytest.approx(5.0)
    x[1:3] = torch.tensor([0.0, 1.0])
    assert median_bandwidth(x) == pytest.approx(1.0)  # the plain median when it is > 0
