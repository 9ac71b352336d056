"""LeadingEigenvalue: value and gradient against eigvals + autograd, and its O(δ²) lag."""

import pytest
import torch

from causalpert.core import LeadingEigenvalue, leading_eigenvalues, max_real_eigenvalue


def _random_stable(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, d, generator=g, dtype=torch.float64) / (2 * d**0.5) - torch.eye(
        d, dtype=torch.float64)


def test_value_and_gradient_match_autograd_through_eigvals():
    for seed in range(3):
        W = _random_stable(12, seed).requires_grad_(True)
        lam = LeadingEigenvalue()(W)
        assert abs(lam.item() - max_real_eigenvalue(W)) < 1e-10
        (grad,) = torch.autograd.grad(lam, W)
        W2 = W.detach().clone().requires_grad_(True)
        ref = torch.linalg.eigvals(W2).real.max()
        (grad_ref,) = torch.autograd.grad(ref, W2)
        assert torch.allclose(grad, grad_ref, atol=1e-8), (grad - grad_ref).abs().max()


def test_stale_eigenvectors_are_second_order_accurate():
    W = _random_stable(30, 0)
    est = LeadingEigenvalue(refresh_every=100)
    est(W)  # refresh at W
    errs = []
    for delta in (1e-2, 1e-3):
        E = torch.randn(30, 30, generator=torch.Generator().manual_seed(1), dtype=W.dtype)
        W1 = W + delta * E
        errs.append(abs(est(W1).item() - max_real_eigenvalue(W1)))
    assert est.calls == 3 and errs[1] < errs[0] / 30  # error shrinks like δ²


def test_a_lagged_refresh_installs_the_due_calls_eigenvectors_exactly_lag_calls_later():
    """lag = 2, refresh every 4: the first refresh is immediate; the one due at call 4 is
    computed in the background from W at call 4 and installed at call 6 — the same G as a
    synchronous refresh at W₄, whatever W is by then (so fits are reproducible)."""
    Ws = [_random_stable(25, 0) + 0.01 * k * torch.eye(25, dtype=torch.float64)
          for k in range(8)]
    sync, lagged = LeadingEigenvalue(refresh_every=4), LeadingEigenvalue(refresh_every=4, lag=2)
    installed = [lagged.update(W) for W in Ws]
    assert installed == [True, False, False, False, False, False, True, False]
    ref = LeadingEigenvalue()
    ref.refresh(Ws[4])
    torch.testing.assert_close(lagged.G, ref.G, rtol=0, atol=0)
    assert lagged.value == ref.value
    for W in Ws:
        sync(W)
    torch.testing.assert_close(sync.G, lagged.G, rtol=0, atol=0)  # both from W₄ by call 8
    with pytest.raises(ValueError, match="lag"):
        LeadingEigenvalue(refresh_every=4, lag=4)


def test_batched_leading_eigenvalues_match_autograd_through_eigvals():
    g = torch.Generator().manual_seed(5)
    W = (torch.randn(4, 6, 6, generator=g, dtype=torch.float64) * 0.4
         - torch.eye(6, dtype=torch.float64)).requires_grad_(True)
    lead = leading_eigenvalues(W)
    ref = torch.linalg.eigvals(W).real.max(-1).values
    assert torch.allclose(lead, ref, atol=1e-10)
    (g1,) = torch.autograd.grad(lead.sum(), W)
    (g2,) = torch.autograd.grad(ref.sum(), W)
    assert torch.allclose(g1, g2, atol=1e-8)


def test_solve_lyapunov_batches_and_solves_each_distinct_rhs_once(monkeypatch):
    from causalpert.core.linalg import solve_lyapunov

    g = torch.Generator().manual_seed(0)
    W = -2 * torch.eye(5) + 0.3 * torch.randn(5, 5, generator=g)
    Q1, Q2 = torch.diag(torch.rand(5, generator=g) + 0.1), torch.eye(5)
    Q = torch.stack([Q1, Q2, Q1, Q2, Q1])
    from causalpert.core.linalg import LyapunovSolver

    calls = []
    real = LyapunovSolver.solve_numpy
    monkeypatch.setattr(LyapunovSolver, "solve_numpy",
                        lambda self, q: calls.append(1) or real(self, q))
    P = solve_lyapunov(W, Q)
    assert len(calls) == 2 and P.shape == Q.shape
    for k in range(5):  # W P + P Wᵀ + Q = 0 for every member of the batch
        residual = W.double() @ P[k].double() + P[k].double() @ W.double().T + Q[k].double()
        assert residual.abs().max() < 1e-5
    assert torch.equal(P[0], P[2]) and torch.equal(P[1], P[3])


def _defective(d: int, seed: int) -> torch.Tensor:
    """W = −I + A with A nilpotent (an acyclic graph, rows and columns permuted): the
    eigenvalue −1 is repeated d times with a non-trivial Jordan structure."""
    g = torch.Generator().manual_seed(seed)
    A = torch.tril(torch.randn(d, d, generator=g, dtype=torch.float64) * 0.2, -1)
    perm = torch.randperm(d, generator=g)
    return A[perm][:, perm] - torch.eye(d, dtype=torch.float64)


def test_cached_schur_lyapunov_matches_scipy_on_stable_and_defective_drifts():
    import numpy as np
    import scipy.linalg

    from causalpert.core.linalg import LyapunovSolver

    # d = 150 with blocks of 8 and 64: many recursive splits, 2×2 blocks of complex pairs kept
    for i, W in enumerate((_random_stable(150, 0) * 1.5, _defective(150, 1))):
        g = torch.Generator().manual_seed(2)
        Q = torch.diag(torch.rand(150, generator=g, dtype=torch.float64) + 0.1)
        ref = scipy.linalg.solve_continuous_lyapunov(W.numpy(), -Q.numpy())
        for block in (8, 64):
            solver = LyapunovSolver(W, block=block)
            P = solver(Q).numpy()
            assert np.abs(P - ref).max() < 1e-10 * np.abs(ref).max()
            residual = W.numpy() @ P + P @ W.numpy().T + Q.numpy()
            assert np.abs(residual).max() < 1e-12 * np.abs(P).max()
        if i == 0:  # the random W has complex pairs: splits must step around their 2×2 blocks
            assert (np.abs(np.diag(solver.T, -1)) > 0).sum() > 10


def test_leading_vectors_by_inverse_iteration_match_full_eig():
    from causalpert.core.linalg import _leading_vectors, _leading_vectors_eig

    for seed in range(3):
        W = _random_stable(60, seed) * 1.8
        x, y = _leading_vectors(W[None])
        xe, ye = _leading_vectors_eig(W[None], "cpu")
        lam = torch.linalg.eigvals(W).real.max().item()
        Wc = W.to(x.dtype)
        for v, M in ((x[0], Wc), (y[0], Wc.T)):  # eigenvectors of the leading eigenvalue
            rq = (v.conj() @ M @ v) / (v.conj() @ v)
            assert abs(rq.real - lam) < 1e-9 and (M @ v - rq * v).abs().max() < 1e-8
        # the same gradient G = Re(y xᵀ / yᵀx) (eigenvector scale and phase cancel)
        G = (y[0][:, None] * x[0][None] / (y[0] @ x[0])).real
        Ge = (ye[0][:, None] * xe[0][None] / (ye[0] @ xe[0])).real
        if abs(torch.linalg.eigvals(W).real.sort().values[-3].item() - lam) > 1e-6:
            torch.testing.assert_close(G, Ge, atol=1e-8, rtol=1e-8)


def test_stability_penalty_value_and_gradient_at_a_refresh():
    """relu(λ + margin)² with the exact λ and its gradient through eigvals (refresh step);
    between refreshes its λ is ⟨G, W⟩, the first-order expansion from the last refresh."""
    from causalpert.core import LinearDrift
    from causalpert.models.gim import _StabilityPenalty

    drift = LinearDrift(40).double()
    with torch.no_grad():
        drift.w_off.copy_((_random_stable(40, 4) * 2.5 + 2.5 * torch.eye(40, dtype=torch.float64))
                          * (1 - torch.eye(40, dtype=torch.float64)))
    pen = _StabilityPenalty(40, 0.05)
    assert pen.leading.refresh_every == 2
    value = pen(drift)
    lam = torch.linalg.eigvals(drift.W).real.max()
    assert lam > -0.05  # the penalty is active
    ref = torch.relu(lam + 0.05) ** 2
    assert abs(value.item() - ref.item()) < 1e-10
    (g,) = torch.autograd.grad(value, drift.w_off)
    w = drift.w_off.detach().clone().requires_grad_(True)
    W = w * drift.mask - torch.eye(40, dtype=torch.float64)
    (g_ref,) = torch.autograd.grad(torch.relu(torch.linalg.eigvals(W).real.max() + 0.05) ** 2, w)
    torch.testing.assert_close(g, g_ref, atol=1e-8, rtol=1e-8)
    with torch.no_grad():  # second call, no refresh: the linear expansion ⟨G, W⟩
        drift.w_off.add_(1e-3)
    lam_lin = (pen.leading.G * drift.W).sum()
    assert abs(pen(drift).item() - torch.relu(lam_lin + 0.05).item() ** 2) < 1e-12
    assert pen.leading.calls == 2
