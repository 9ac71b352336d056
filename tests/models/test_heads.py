"""Feature heads: the CV picks the RBF head for a curved map and ridge for a linear one; the
predictive variance matches the Bayesian-ridge closed form and grows away from the data."""

import numpy as np
import pytest

from causalpert.models.heads import (
    LinearHead,
    RBFHead,
    fit_rbf_cv,
    head_from_checkpoint,
    held_out_predictions,
    select_head,
)


def _data(curved: bool, seed: int = 0, n: int = 40):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    f = np.sin(2 * X[:, :1]) + X[:, 1:2] ** 2 if curved else X @ np.array([[1.0], [-0.5], [0.2]])
    Y = np.hstack([f, 2 * f]) + 0.05 * rng.standard_normal((n, 2))
    return X, Y, np.arange(n)


def test_cv_picks_rbf_for_a_curved_map_and_it_predicts_better():
    X, Y, g = _data(curved=True)
    Xt, Yt, _ = _data(curved=True, seed=1)
    head = select_head(X, Y, g, "cv")
    ridge = select_head(X, Y, g, "ridge")
    assert isinstance(head, RBFHead)
    err = [float(((h(Xt) - Yt) ** 2).mean()) for h in (head, ridge)]
    assert err[0] < 0.5 * err[1], err


def test_cv_keeps_ridge_for_a_linear_map():
    X, Y, g = _data(curved=False)
    assert isinstance(select_head(X, Y, g, "cv"), LinearHead)


def test_linear_variance_is_the_bayesian_ridge_closed_form():
    """σ²/α (‖x‖² − kᵀ(K + αI)⁻¹k) (dual) = σ² xᵀ(XᵀX + αI)⁻¹x (primal)."""
    X, Y, g = _data(curved=False)
    head = select_head(X, Y, g, "ridge")
    Xn = np.random.default_rng(2).standard_normal((5, 3)) * 3
    Xs = (Xn - head.ridge.x_mean) / head.ridge.x_sd
    T = head.train_x
    primal = head.noise * np.einsum("mq,qm->m", Xs, np.linalg.solve(
        T.T @ T + head.alpha * np.eye(3), Xs.T))
    np.testing.assert_allclose(head.variance(Xn), primal, rtol=1e-8)


def test_rbf_variance_grows_with_distance_from_the_training_rows():
    X, Y, g = _data(curved=True)
    head = fit_rbf_cv(X, Y, g)
    direction = np.array([[1.0, 1.0, 1.0]]) / np.sqrt(3)
    v = head.variance(np.vstack([X[:1], direction * 3, direction * 6, direction * 12]))
    assert v[0] < 0.2 * v[-1] and np.all(np.diff(v[1:]) >= 0), v
    np.testing.assert_allclose(v[-1], head.noise / head.alpha, rtol=1e-3)  # the prior


@pytest.mark.parametrize("kind", ["ridge", "rbf"])
def test_head_checkpoint_roundtrip(kind):
    X, Y, g = _data(curved=True)
    head = select_head(X, Y, g, kind)
    back = head_from_checkpoint(head.to_tensors("h"), "h", head.meta())
    assert back.kind == kind
    np.testing.assert_allclose(back(X[:5]), head(X[:5]))
    np.testing.assert_allclose(back.variance(X[:5] + 1), head.variance(X[:5] + 1))


def test_unknown_head_kind_is_a_one_line_error():
    X, Y, g = _data(curved=False)
    with pytest.raises(ValueError, match="head kind must be one of"):
        select_head(X, Y, g, "gp")


@pytest.mark.parametrize("kind", ["ridge", "rbf"])
def test_held_out_predictions_reproduce_the_cv_error_the_head_was_chosen_by(kind):
    """Each row predicted by the head refitted without its group: their squared error is the
    leave-one-group-out error the head's penalty was chosen by, and far above the in-sample
    error (the RBF head on a curved map; held-out rows are what an unseen perturbation gets)."""
    X, Y, _ = _data(curved=True, seed=2)
    g = np.repeat(np.arange(20), 2)  # groups of two rows, held out together
    head = select_head(X, Y, g, kind)
    held = held_out_predictions(head, X, Y, g)
    cv = float(((held - Y) ** 2).mean())
    np.testing.assert_allclose(cv, head.cv_mse, rtol=1e-8)
    in_sample = float(((head(X) - Y) ** 2).mean())
    assert cv > (1.5 if kind == "rbf" else 1.0) * in_sample  # ridge: α large, nearly the mean
    few = np.repeat([0, 1], 20)  # two groups: nothing to hold out, the in-sample fit
    np.testing.assert_array_equal(held_out_predictions(head, X, Y, few), head(X))


def test_a_zero_mean_rbf_head_predicts_zero_far_away_and_keeps_its_cv():
    """``centred=False`` (the genetic head): far from every training row the head predicts 0,
    where the centred head predicts the training mean; its held-out predictions still
    reproduce its CV error, and a checkpoint keeps the choice."""
    X, Y, _ = _data(curved=True, seed=3)
    Y = Y + 5.0  # a mean far from 0
    g = np.repeat(np.arange(20), 2)
    zero, centred = fit_rbf_cv(X, Y, g, centred=False), fit_rbf_cv(X, Y, g)
    far = np.full((1, 3), 50.0)
    np.testing.assert_allclose(zero(far), 0.0, atol=1e-9)
    np.testing.assert_allclose(centred(far), Y.mean(0, keepdims=True), atol=1e-9)
    held = held_out_predictions(zero, X, Y, g)
    np.testing.assert_allclose(((held - Y) ** 2).mean(), zero.cv_mse, rtol=1e-8)
    back = head_from_checkpoint(zero.to_tensors("h"), "h", zero.meta())
    assert back.centred is False
    np.testing.assert_allclose(held_out_predictions(back, X, Y, g), held)
