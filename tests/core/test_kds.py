"""The closed-form KDS against automatic differentiation of the kernel (float64)."""

import pytest
import torch

from causalpert.core import LinearDrift, MLPDrift, kds, kds_autodiff, kds_bernoulli, kds_shift_gain


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("model", ["linear", "mlp"])
@pytest.mark.parametrize("estimator", ["u", "v", "linear"])
def test_closed_form_matches_autodiff(model, estimator):
    g = torch.Generator().manual_seed(1)
    d, n = 5, 8
    drift = (LinearDrift(d, init_scale=0.7, generator=g) if model == "linear"
             else MLPDrift(d, hidden=3, init_scale=1.5, generator=g))
    with torch.no_grad():
        drift.b.normal_(generator=g)
    for _ in range(3):  # random shifts and noise scales
        x = torch.randn(n, d, generator=g) * 1.5
        shift = torch.randn(d, generator=g) * 2
        sigma2 = torch.rand(d, generator=g) * 2 + 0.1

        def fn(z, shift=shift):
            return drift(z) + shift

        h = float(torch.rand(1, generator=g) * 2 + 0.5)
        closed = kds(x[None], fn(x)[None], sigma2[None], bandwidth=h, estimator=estimator)
        auto = kds_autodiff(x, fn, sigma2, bandwidth=h, estimator=estimator)
        torch.testing.assert_close(closed[0], auto, rtol=1e-10, atol=1e-12)


def test_batched_contexts_equal_one_by_one():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 10, 3, generator=g)
    f = torch.randn(4, 10, 3, generator=g)
    s2 = torch.rand(4, 3, generator=g) + 0.1
    batched = kds(x, f, s2, bandwidth=1.3)
    single = torch.stack([kds(x[k:k + 1], f[k:k + 1], s2[k:k + 1], bandwidth=1.3)[0]
                          for k in range(4)])
    torch.testing.assert_close(batched, single)


def test_v_statistic_adds_the_diagonal_bias():
    """V = ((n−1) U + mean of the diagonal) / n, and the diagonal term is positive."""
    g = torch.Generator().manual_seed(2)
    n = 6
    x = torch.randn(1, n, 3, generator=g)
    f = torch.randn(1, n, 3, generator=g)
    s2 = torch.rand(1, 3, generator=g) + 0.1
    u = kds(x, f, s2, bandwidth=1.0, estimator="u")
    v = kds(x, f, s2, bandwidth=1.0, estimator="v")
    diag = (f[0] ** 2).sum(-1) / 1.0 + 0.25 * ((s2**2).sum() * 2 + s2.sum() ** 2)  # r = 0
    torch.testing.assert_close(v, ((n - 1) * u + diag.mean()) / n)


def test_kds_is_small_at_the_true_drift_and_large_at_a_wrong_one():
    """Samples of an OU process: the true drift has KDS ≈ 0, a mis-specified one does not."""
    g = torch.Generator().manual_seed(3)
    d, n = 3, 2000
    x = torch.randn(1, n, d, generator=g) * (0.5**0.5)  # N(0, σ²/2) with σ = 1, f = −x
    s2 = torch.ones(1, d)
    true = kds(x, -x, s2, bandwidth=1.0)
    wrong = kds(x, -x + 1.0, s2, bandwidth=1.0)
    assert abs(float(true)) < 0.01
    assert float(wrong) > 20 * abs(float(true))


def test_bad_shapes_raise_one_line_errors():
    with pytest.raises(ValueError, match=r"\[K, n, d\]"):
        kds(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(1, 2), bandwidth=1.0)
    with pytest.raises(ValueError, match="unknown KDS estimator"):
        kds(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), torch.ones(1, 2), bandwidth=1.0,
            estimator="w")


@pytest.mark.parametrize("estimator", ["u", "v", "linear"])
def test_bernoulli_expectation_matches_enumeration_over_masks(estimator):
    """E_m[KDS(f + m ⊙ u)] in closed form equals the exact sum over all 2^d masks."""
    import itertools

    g = torch.Generator().manual_seed(4)
    K, n, d = 2, 7, 3
    x = torch.randn(K, n, d, generator=g)
    f0 = torch.randn(K, n, d, generator=g)
    s2 = torch.rand(K, d, generator=g) + 0.2
    pi = torch.rand(K, d, generator=g)
    u = torch.randn(K, d, generator=g) * 2
    closed = kds_bernoulli(x, f0 + (pi * u)[:, None], pi * (1 - pi) * u**2, s2,
                           bandwidth=1.4, estimator=estimator)
    exact = torch.zeros(K)
    for bits in itertools.product([0.0, 1.0], repeat=d):
        m = torch.tensor(bits).expand(K, d)
        p = (pi**m * (1 - pi) ** (1 - m)).prod(-1)
        exact += p * kds(x, f0 + (m * u)[:, None], s2, bandwidth=1.4, estimator=estimator)
    torch.testing.assert_close(closed, exact, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("estimator", ["u", "v"])
def test_shift_gain_is_the_exact_drop_at_the_best_single_gene_shift(estimator):
    """KDS(f + δ e_j) is quadratic in δ: at δ*_j the KDS equals K₀ − R_j, and any other δ
    gives more; checked by direct evaluation for every gene of two contexts (float64)."""
    g = torch.Generator().manual_seed(3)
    K, n, d, h = 2, 40, 5, 1.7
    x = torch.randn(K, n, d, generator=g, dtype=torch.float64)
    f = -x + 0.8 * torch.randn(K, 1, d, generator=g, dtype=torch.float64)
    s2 = torch.rand(K, d, generator=g, dtype=torch.float64) + 0.5
    gain, best = kds_shift_gain(x, f, s2, bandwidth=h, estimator=estimator)
    k0 = kds(x, f, s2, bandwidth=h, estimator=estimator)
    assert (gain >= 0).all() and gain.max() > 1e-3
    for j in range(d):
        e = torch.zeros(d, dtype=torch.float64)
        e[j] = 1.0
        at = kds(x, f + best[:, j, None, None] * e, s2, bandwidth=h, estimator=estimator)
        torch.testing.assert_close(at, k0 - gain[:, j], rtol=1e-9, atol=1e-12)
        for step in (-0.3, 0.3):
            off = kds(x, f + (best[:, j] + step)[:, None, None] * e, s2, bandwidth=h,
                      estimator=estimator)
            assert (off > at).all()
    with pytest.raises(ValueError, match="pairwise estimator"):
        kds_shift_gain(x, f, s2, bandwidth=h, estimator="linear")


@pytest.mark.parametrize("estimator", ["u", "v"])
def test_pooled_shift_gain_is_the_drop_of_the_blocks_mean_kds(estimator):
    """pooled=True: one shift δ e_j shared by K blocks of one sample; at the pooled δ*_j the
    blocks' mean KDS equals its value at δ = 0 minus R_j, and no other δ does better."""
    g = torch.Generator().manual_seed(5)
    K, n, d, h = 3, 30, 4, 1.3
    x = torch.randn(K, n, d, generator=g, dtype=torch.float64)
    f = -x + 0.6
    s2 = torch.full((K, d), 0.9, dtype=torch.float64)
    gain, best = kds_shift_gain(x, f, s2, bandwidth=h, estimator=estimator, pooled=True)
    assert gain.shape == best.shape == (1, d)
    k0 = kds(x, f, s2, bandwidth=h, estimator=estimator).mean()
    for j in range(d):
        e = torch.zeros(d, dtype=torch.float64)
        e[j] = 1.0
        at = kds(x, f + best[0, j] * e, s2, bandwidth=h, estimator=estimator).mean()
        torch.testing.assert_close(at, k0 - gain[0, j], rtol=1e-9, atol=1e-12)
        for step in (-0.2, 0.2):
            off = kds(x, f + (best[0, j] + step) * e, s2, bandwidth=h, estimator=estimator)
            assert off.mean() > at


def test_hand_written_gram_backward_matches_autograd():
    """``_Grams`` (the backward used when the cells need no gradient) against torch's
    gradcheck, and the KDS gradient in f and σ² against the plain autograd path."""
    from causalpert.core.kds import _Grams

    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 7, 5, generator=g)
    f = torch.randn(3, 7, 5, generator=g).requires_grad_(True)
    D = (torch.rand(3, 5, generator=g) + 0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f, D: _Grams.apply(x, f, D), (f, D))
    for estimator in ("u", "v"):
        fast = kds_bernoulli(x, f, D * 0.3, D, bandwidth=1.7, estimator=estimator).sum()
        grads = torch.autograd.grad(fast, (f, D))
        xg = x.clone().requires_grad_(True)  # cells with a gradient: the autograd path
        ref = kds_bernoulli(xg, f, D * 0.3, D, bandwidth=1.7, estimator=estimator).sum()
        ref_grads = torch.autograd.grad(ref, (f, D))
        torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)
        for a, b in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
