"""Tests for causalpert.metrics against explicit formulas and independent libraries."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import average_precision_score, roc_auc_score

from causalpert.metrics import (
    METRICS,
    SINKHORN_EPSILON,
    delta_pearson,
    edist,
    edist_rel,
    edist_sq,
    graph_auprc,
    mean_rmse,
    mmd,
    shd,
    sinkhorn,
    target_auprc,
    target_auroc,
)


@pytest.fixture
def cells():
    rng = np.random.default_rng(0)
    xp = rng.normal(size=(7, 3))
    xo = rng.normal(loc=0.5, size=(9, 3))
    xc = rng.normal(loc=-0.3, size=(11, 3))
    return xp, xo, xc


def _loop_mean(a, b, f, *, skip_diag):
    vals = [
        f(a[i] - b[j]) for i in range(len(a)) for j in range(len(b)) if not (skip_diag and i == j)
    ]
    return sum(vals) / len(vals)


def test_edist_matches_double_loop(cells):
    xp, xo, _ = cells
    norm = lambda v: math.sqrt(sum(t * t for t in v))  # noqa: E731
    ref = (
        2 * _loop_mean(xp, xo, norm, skip_diag=False)
        - _loop_mean(xp, xp, norm, skip_diag=True)
        - _loop_mean(xo, xo, norm, skip_diag=True)
    )
    out = edist(xp, xo)
    assert isinstance(out, float)
    assert out == pytest.approx(ref, rel=1e-12)
    assert out > 0.1


def test_edist_sq_matches_loops(cells):
    xp, xo, _ = cells
    sq = lambda v: float(sum(t * t for t in v))  # noqa: E731
    ref = (
        2 * _loop_mean(xp, xo, sq, skip_diag=False)
        - _loop_mean(xp, xp, sq, skip_diag=False)
        - _loop_mean(xo, xo, sq, skip_diag=False)
    )
    assert edist_sq(xp, xo) == pytest.approx(ref, rel=1e-10)
    assert edist_sq(xp.tolist(), xo.tolist()) == pytest.approx(ref, rel=1e-10)


def test_mmd_matches_loop_formula(cells):
    xp, xo, xc = cells
    pd = [np.linalg.norm(xc[i] - xc[j]) for i in range(len(xc)) for j in range(i + 1, len(xc))]
    base = float(np.median(pd))
    hs = [s * base for s in (0.5, 1, 2, 4, 8)]
    k = lambda v: sum(math.exp(-float(v @ v) / (2 * h * h)) for h in hs)  # noqa: E731
    ref = (
        _loop_mean(xp, xp, k, skip_diag=True)
        + _loop_mean(xo, xo, k, skip_diag=True)
        - 2 * _loop_mean(xp, xo, k, skip_diag=False)
    )
    assert mmd(xp, xo, x_control=xc) == pytest.approx(ref, rel=1e-10)
    assert mmd(xp, xo, bandwidth_base=base) == pytest.approx(ref, rel=1e-10)
    assert mmd(xp, xo, bandwidth_base=2 * base) != pytest.approx(ref, rel=1e-3)


def test_mmd_large_control_subsample_is_deterministic():
    rng = np.random.default_rng(1)
    xc = rng.normal(size=(2500, 4))
    xp, xo = rng.normal(size=(20, 4)), rng.normal(loc=1.0, size=(25, 4))
    a, b = mmd(xp, xo, x_control=xc), mmd(xp, xo, x_control=xc)
    assert a == b
    assert a > 0


def test_sinkhorn_properties_and_pot_reference(cells):
    xp, xo, _ = cells
    assert SINKHORN_EPSILON == 1.0
    assert sinkhorn(xo, xo) == pytest.approx(0.0, abs=1e-8)
    assert sinkhorn(xo, xo[::-1]) == pytest.approx(0.0, abs=1e-6)
    shifted = sinkhorn(xo, xo + 2.0)
    assert shifted > 1.0
    ref = ot.bregman.empirical_sinkhorn_divergence(
        xp, xo, 1.0, metric="sqeuclidean", numIterMax=100_000, stopThr=1e-12
    )
    assert sinkhorn(xp, xo) == pytest.approx(float(ref), rel=2e-5)
    ref2 = ot.bregman.empirical_sinkhorn_divergence(
        xp, xo, 2.0, metric="sqeuclidean", numIterMax=100_000, stopThr=1e-12
    )
    assert sinkhorn(xp, xo, epsilon=2.0) == pytest.approx(float(ref2), rel=2e-5)
    assert sinkhorn(xp, xo, epsilon=2.0) != pytest.approx(sinkhorn(xp, xo), rel=1e-3)


def test_sinkhorn_small_epsilon_no_underflow():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(6, 2)), rng.normal(size=(6, 2)) + 28.0
    # Cross costs > 745·ε everywhere: exp(-C/ε) underflows to 0 in a plain Sinkhorn kernel.
    assert ot.dist(a, b).min() > 800

    def ot_log(x, y):
        w, v = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
        cost = ot.dist(x, y)
        return float(
            ot.sinkhorn2(w, v, cost, 1.0, method="sinkhorn_log", numItermax=50_000, stopThr=1e-10)
        )

    ref = ot_log(a, b) - 0.5 * (ot_log(a, a) + ot_log(b, b))
    out = sinkhorn(a, b, epsilon=1.0)
    assert out == pytest.approx(ref, rel=1e-8)
    assert out > edist_sq(a, b) / 4  # ≈ W2² ≥ ‖Δμ‖² = edist_sq / 2


def test_mean_metrics(cells):
    xp, xo, _ = cells
    diff = xp.mean(0) - xo.mean(0)
    assert mean_rmse(xp, xo) == pytest.approx(np.sqrt(np.mean(diff**2)), rel=1e-12)
    rng = np.random.default_rng(3)
    yp, yo = rng.normal(size=(5, 30)), rng.normal(size=(6, 30))
    m0 = rng.normal(size=30)
    r = pearsonr(yp.mean(0) - m0, yo.mean(0) - m0).statistic
    assert delta_pearson(yp, yo, mu_control=m0) == pytest.approx(r, rel=1e-10)
    const = np.tile(m0 + 1.0, (4, 1))
    assert math.isnan(delta_pearson(const, yo, mu_control=m0))
    assert math.isnan(delta_pearson(yp, np.tile(m0, (3, 1)), mu_control=m0))
    assert delta_pearson(yo + 0.5, yo, mu_control=m0) == pytest.approx(1.0, rel=1e-12)


def test_edist_rel(cells):
    xp, xo, xc = cells
    assert edist_rel(xc, xo, x_control=xc) == pytest.approx(1.0, rel=1e-12)
    assert edist_rel(xp, xo, x_control=xc) == pytest.approx(edist(xp, xo) / edist(xc, xo))
    assert edist_rel(xo, xo + 1e-9, x_control=xc) < 0.01
    # Control indistinguishable from observed: edist(X, X) < 0 (U-statistic) -> nan.
    assert math.isnan(edist_rel(xp, xo, x_control=xo))


def _tied_scores():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 4, size=(6, 10)) / 4.0
    labels = rng.random(size=(6, 10)) < 0.3
    return scores, labels


def test_target_auroc_auprc_vs_sklearn_with_ties():
    scores, labels = _tied_scores()
    assert len(np.unique(scores)) < scores.size
    y, s = labels.ravel(), scores.ravel()
    assert target_auroc(scores, labels) == pytest.approx(roc_auc_score(y, s), rel=1e-12)
    assert target_auprc(scores, labels) == pytest.approx(average_precision_score(y, s), rel=1e-12)
    rng = np.random.default_rng(6)
    s2, y2 = rng.random(200), rng.integers(0, 2, 200)
    assert target_auprc(s2, y2) == pytest.approx(average_precision_score(y2, s2), rel=1e-12)
    assert target_auroc(s2, y2) == pytest.approx(roc_auc_score(y2, s2), rel=1e-12)


def test_graph_auprc_ignores_diagonal_and_matches_sklearn():
    rng = np.random.default_rng(7)
    d = 8
    true = (rng.random((d, d)) < 0.3).astype(float)
    scores = rng.normal(size=(d, d))
    off = ~np.eye(d, dtype=bool)
    ref = average_precision_score(true[off] != 0, np.abs(scores[off]))
    val = graph_auprc(scores, true)
    assert val == pytest.approx(ref, rel=1e-12)
    scores2, true2 = scores.copy(), true.copy()
    np.fill_diagonal(scores2, 100.0)
    np.fill_diagonal(true2, 0.0 if true[0, 0] else 1.0)
    assert graph_auprc(scores2, true2) == pytest.approx(val, rel=1e-12)


def test_shd_hand_made():
    true = np.zeros((4, 4))
    true[0, 1] = true[1, 2] = true[2, 3] = 1.0
    assert shd(true, true) == 0.0
    pred = np.zeros((4, 4))
    pred[0, 1] = 0.7  # correct
    pred[2, 1] = -0.9  # reversed 1->2
    pred[0, 3] = 0.5  # extra; 2->3 missing
    np.fill_diagonal(pred, 5.0)  # diagonal ignored
    assert shd(pred, true) == 3.0
    assert shd(pred, true, threshold=0.6) == 2.0  # extra 0->3 dropped, 0->1 kept
    assert shd(pred, true, threshold=0.8) == 3.0  # now 0->1 missing too
    both = true.copy()
    both[1, 0] = 1.0  # predicted 0<->1 where only 0->1 is true
    assert shd(both, true) == 1.0


def test_registry():
    assert set(METRICS) == {
        "edist", "edist_sq", "mmd", "sinkhorn", "mean_rmse", "delta_pearson", "edist_rel",
        "target_auroc", "target_auprc", "target_rank", "graph_auprc", "shd",
    }  # fmt: skip
    assert all(m.name == k and m.fn.__name__ == k for k, m in METRICS.items())
    assert METRICS["delta_pearson"].higher_is_better and not METRICS["edist"].higher_is_better
    assert METRICS["shd"].kind == "graph" and METRICS["target_auroc"].kind == "target"
    assert not METRICS["target_rank"].higher_is_better


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: edist(x[0], x[1]), "must be 2-D"),
        (lambda x: edist(x[1][:1], x[1]), "at least 2"),
        (lambda x: edist(x[1], x[1][:, :2]), "genes"),
        (lambda x: edist_sq(x[2], x[1]), "NaN or inf"),
        (lambda x: mmd(x[1], x[1]), "x_control or bandwidth_base"),
        (lambda x: mmd(x[1], x[1], bandwidth_base=-1.0), "bandwidth_base"),
        (lambda x: mmd(x[1], x[1], x_control=np.ones((5, 3))), "median pairwise distance 0"),
        (lambda x: sinkhorn(x[1], x[1], epsilon=0.0), "epsilon"),
        (lambda x: delta_pearson(x[1], x[1], mu_control=np.zeros(2)), "mu_control"),
        (lambda x: edist_rel(x[1], x[1], x_control=x[1][:, :2]), "genes"),
        (lambda x: target_auroc([0.1, 0.2], [True, True]), "one class"),
        (lambda x: target_auprc([0.1, 0.2], [0, 0]), "one class"),
        (lambda x: target_auprc([0.1, np.nan], [0, 1]), "NaN"),
        (lambda x: target_auroc([0.1, 0.2], [0, 2]), "0/1"),
        (lambda x: target_auroc([0.1, 0.2, 0.3], [0, 1]), "shape"),
        (lambda x: graph_auprc(np.ones((3, 4)), np.ones((3, 4))), "square"),
        (lambda x: graph_auprc(np.ones((3, 3)), np.eye(3)), "one class"),
        (lambda x: shd(np.ones((3, 3)), np.ones((4, 4))), "same node order"),
        (lambda x: shd(np.ones((3, 3)), np.ones((3, 3)), threshold=-1.0), "threshold"),
    ],
)
def test_value_errors(call, match):
    rng = np.random.default_rng(9)
    good = rng.normal(size=(5, 3))
    bad = good.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=match):
        call((good[0], good, bad))
