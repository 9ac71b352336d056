"""Samplers against independent truths: scipy's Lyapunov solver, Euler–Maruyama vs exact."""

import numpy as np
import pytest
import scipy.linalg
import torch

from causalpert.core import (
    LinearDrift,
    MLPDrift,
    SimulationDivergedError,
    UnstableDriftError,
    euler_maruyama,
    sample_stationary,
    solve_lyapunov,
    stationary_gaussian,
)


def _random_stable_linear(d, seed, *, acyclic=False):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=torch.float64) * 0.4
    A *= torch.rand(d, d, generator=g, dtype=torch.float64) < 0.3
    A.fill_diagonal_(0)
    if acyclic:  # nilpotent A: W = −I + A is defective with eigenvalue −1
        A = torch.tril(A, -1)
    drift = LinearDrift(d).double()
    with torch.no_grad():
        drift.w_off.copy_(A)
        drift.b.copy_(torch.randn(d, generator=g, dtype=torch.float64))
        drift.log_sigma.copy_(torch.rand(d, generator=g, dtype=torch.float64) - 1)
    return drift


@pytest.mark.parametrize("acyclic", [False, True])
def test_lyapunov_matches_scipy(acyclic):
    drift = _random_stable_linear(8, 0, acyclic=acyclic)
    W = drift.W.detach()
    Q = torch.diag(torch.rand(8, dtype=torch.float64) + 0.1)
    P = solve_lyapunov(W, Q)
    ref = scipy.linalg.solve_continuous_lyapunov(W.numpy(), -Q.numpy())
    np.testing.assert_allclose(P.numpy(), ref, atol=1e-12)
    residual = W @ P + P @ W.T + Q
    assert residual.abs().max() < 1e-12


def test_mean_shift_identity():
    """Δμ = (I − A)⁻¹ (m ⊙ u) with A = W + I (method.md §3)."""
    drift = _random_stable_linear(6, 1)
    m = torch.tensor([[0, 1, 0, 0, 1, 0]], dtype=torch.float64)
    u = torch.tensor([[0.0, 2.5, 0, 0, -3.0, 0]], dtype=torch.float64)
    sigma = drift.log_sigma.exp().detach().expand(2, -1)
    mean, _ = stationary_gaussian(drift.W, drift.b, torch.cat([torch.zeros_like(u), m * u]),
                                  sigma)
    A = drift.W.detach() + torch.eye(6, dtype=torch.float64)
    expected = torch.linalg.solve(torch.eye(6, dtype=torch.float64) - A, (m * u)[0])
    torch.testing.assert_close(mean[1] - mean[0], expected)


def test_euler_maruyama_matches_exact_gaussian():
    """EM (dt = 0.01) vs the Lyapunov Gaussian: means within 0.05, covariances within 0.05
    (the EM bias of the covariance is O(dt) ≈ 1 %; Monte-Carlo error with 8,000 draws)."""
    drift = _random_stable_linear(6, 2)
    shift = torch.zeros(2, 6, dtype=torch.float64)
    shift[1, 2] = 3.0
    log_sigma = drift.log_sigma.detach().expand(2, -1)
    mean, cov = stationary_gaussian(drift.W, drift.b, shift, log_sigma.exp())
    g = torch.Generator().manual_seed(0)
    x = sample_stationary(drift, shift, log_sigma, 8000, method="euler", chains=800,
                          burn_in=500, thin=100, generator=g)
    assert (x.mean(1) - mean).abs().max() < 0.05
    emp = torch.stack([torch.cov(xk.T) for xk in x])
    assert (emp - cov).abs().max() < 0.05


def test_exact_sampler_moments():
    drift = _random_stable_linear(5, 3)
    shift = torch.zeros(1, 5, dtype=torch.float64)
    ls = drift.log_sigma.detach().expand(1, -1)
    mean, cov = stationary_gaussian(drift.W, drift.b, shift, ls.exp())
    x = sample_stationary(drift, shift, ls, 40000, generator=torch.Generator().manual_seed(0))
    assert (x[0].mean(0) - mean[0]).abs().max() < 0.02
    assert (torch.cov(x[0].T) - cov[0]).abs().max() < 0.02


def test_unstable_drift_is_refused_for_exact_sampling():
    drift = _random_stable_linear(3, 0)
    with torch.no_grad():
        drift.w_off.copy_(torch.tensor([[0, 2.0, 0], [2.0, 0, 0], [0, 0, 0]]))
    with pytest.raises(UnstableDriftError, match="not stable"):
        stationary_gaussian(drift.W, drift.b, torch.zeros(1, 3), torch.ones(1, 3))


def test_euler_maruyama_divergence_is_reported():
    with pytest.raises(SimulationDivergedError, match="diverged"):
        euler_maruyama(lambda x: 3.0 * x, torch.zeros(1, 2), torch.ones(1, 2),
                       torch.ones(1, 4, 2), n_samples=4, dt=0.1, burn_in=2000)


def test_mlp_sampler_runs_many_contexts_at_once():
    drift = MLPDrift(4, hidden=2, generator=torch.Generator().manual_seed(0)).double()
    shift = torch.zeros(3, 4, dtype=torch.float64)
    shift[1, 0], shift[2, 0] = 3.0, -3.0
    x = sample_stationary(drift, shift, drift.log_sigma.detach().expand(3, -1), 100,
                          generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 100, 4)
    means = x.mean(1)[:, 0]  # the shift on variable 0 moves its mean (f_0 = −x_0 + … + u)
    assert means[1] - means[0] > 2.0 and means[0] - means[2] > 2.0


def test_match_stationary_variance_reaches_the_target():
    from causalpert.core import match_stationary_variance, solve_lyapunov

    g = torch.Generator().manual_seed(0)
    d = 6
    W = -torch.eye(d, dtype=torch.float64) + 0.3 * torch.randn(d, d, generator=g,
                                                               dtype=torch.float64)
    W.fill_diagonal_(-1.0)
    sigma2 = torch.linspace(0.3, 2.0, d, dtype=torch.float64)  # a reachable target
    target = solve_lyapunov(W, torch.diag(sigma2)).diagonal()
    ls = match_stationary_variance(W, torch.zeros(d), target, iters=500, tol=1e-9)
    P = solve_lyapunov(W, torch.diag(torch.exp(2 * ls)))
    torch.testing.assert_close(P.diagonal(), target, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(torch.exp(2 * ls), sigma2, rtol=1e-4, atol=1e-5)


def test_transport_cells_maps_the_control_law_onto_the_intervened_law():
    """Control draws pushed through the map follow the intervened Gaussian (shift and
    activity), and a shift moves every cell by −W⁻¹ m ⊙ u."""
    from causalpert.core import LinearDrift, transport_cells

    g = torch.Generator().manual_seed(1)
    d = 4
    drift = LinearDrift(d).double()
    with torch.no_grad():
        drift.W.copy_(-torch.eye(d, dtype=torch.float64)
                      + 0.4 * torch.tril(torch.randn(d, d, generator=g, dtype=torch.float64), -1))
        drift.b.copy_(torch.randn(d, generator=g, dtype=torch.float64))
    ls = torch.full((2, d), -0.3, dtype=torch.float64)
    shift = torch.tensor([[1.5, 0, 0, 0], [0, 0, -2.0, 0]], dtype=torch.float64)
    x0 = sample_stationary(drift, torch.zeros(1, d, dtype=torch.float64), ls[:1], 40000,
                           generator=g).expand(2, -1, -1)
    moved = transport_cells(drift, shift, ls, x0)
    delta = -torch.linalg.solve(drift.W.detach(), shift.T).T
    torch.testing.assert_close(moved - x0, delta[:, None, :].expand_as(x0))
    alpha = torch.tensor([[1.0, 0.2, 1, 1], [1, 1, 1, 2.0]], dtype=torch.float64)
    act = transport_cells(drift, shift, ls, x0, activity=alpha)
    ref = sample_stationary(drift, shift, ls, 40000, activity=alpha, generator=g)
    torch.testing.assert_close(act.mean(1), ref.mean(1), atol=0.03, rtol=0)
    for k in range(2):
        torch.testing.assert_close(torch.cov(act[k].T), torch.cov(ref[k].T), atol=0.03, rtol=0)
