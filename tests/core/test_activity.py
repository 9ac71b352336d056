"""Activity interventions: target j scales its outgoing edges by α_j = exp(m_j κ_j)."""

import torch

from causalpert.core import Interventions, LinearDrift, intervened_drift
from causalpert.core.drift import MLPDrift
from causalpert.core.sampling import sample_stationary, stationary_gaussian


def _chain(d=4):
    """0 → 1 → 2, 0 → 3 with weights 0.8, 0.5, −0.6; b = 1."""
    drift = LinearDrift(d).double()
    with torch.no_grad():
        drift.w_off.zero_()
        drift.w_off[1, 0], drift.w_off[2, 1], drift.w_off[3, 0] = 0.8, 0.5, -0.6
        drift.b.fill_(1.0)
        drift.log_sigma.fill_(-1.0)
    return drift


def test_linear_activity_drift_is_the_rescaled_matrix():
    drift, g = _chain(), torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    alpha = torch.rand(3, 4, generator=g, dtype=torch.float64) * 2
    W = drift.intervened_W(alpha)  # [K, d, d]
    expected = torch.einsum("kij,knj->kni", W, x) + drift.b
    assert torch.allclose(drift(x, activity=alpha[:, None]), expected, atol=1e-12)
    assert torch.allclose(drift(x, activity=torch.ones(1, 1, 4, dtype=torch.float64)), drift(x))


def test_inhibiting_a_source_silences_its_children_but_not_itself():
    """α_0 = 0: x0 keeps its law; the children of 0 lose their input (closed form)."""
    drift = _chain()
    alpha = torch.tensor([[1.0, 1, 1, 1], [0.0, 1, 1, 1]], dtype=torch.float64)
    W = drift.intervened_W(alpha)
    mean, cov = stationary_gaussian(W, drift.b, torch.zeros(2, 4, dtype=torch.float64),
                                    drift.log_sigma.exp().expand(2, 4))
    # control: μ0 = 1, μ1 = 1 + 0.8, μ2 = 1 + 0.5 μ1, μ3 = 1 − 0.6
    assert torch.allclose(mean[0], torch.tensor([1.0, 1.8, 1.9, 0.4], dtype=torch.float64))
    # inhibited activity of 0: its level and variance unchanged, children back to b
    assert torch.allclose(mean[1], torch.tensor([1.0, 1.0, 1.5, 1.0], dtype=torch.float64))
    assert torch.isclose(cov[1, 0, 0], cov[0, 0, 0])
    assert torch.isclose(cov[1, 0, 1], torch.tensor(0.0, dtype=torch.float64))


def test_exact_and_euler_samplers_agree_under_an_activity_intervention():
    drift = _chain().float()
    alpha = torch.tensor([[0.2, 1.0, 2.0, 1.0]])
    shift = torch.zeros(1, 4)
    log_sigma = drift.log_sigma.detach().expand(1, 4)
    g = torch.Generator().manual_seed(1)
    exact = sample_stationary(drift, shift, log_sigma, 4000, activity=alpha, generator=g)
    euler = sample_stationary(drift, shift, log_sigma, 4000, activity=alpha, method="euler",
                              generator=g)
    mean = -torch.linalg.solve(drift.intervened_W(alpha)[0].double(), drift.b.double())
    assert torch.allclose(exact.mean(1)[0], mean, atol=0.03)
    assert torch.allclose(euler.mean(1)[0].double(), mean, atol=0.05)


def test_mlp_activity_zero_removes_every_outgoing_dependence():
    g = torch.Generator().manual_seed(2)
    drift = MLPDrift(5, init_scale=1.0, generator=g).double()
    x = torch.randn(1, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    alpha = torch.ones(1, 1, 5, dtype=torch.float64)
    alpha[..., 2] = 0.0
    f = drift(x, activity=alpha)
    for j in range(5):
        (grad,) = torch.autograd.grad(f[0, :, j].sum(), x, retain_graph=True)
        if j == 2:  # its own decay −x_2 stays
            assert torch.allclose(grad[0, :, 2], -torch.ones(3, dtype=torch.float64))
        else:
            assert torch.all(grad[0, :, 2] == 0)
    assert torch.allclose(drift(x, activity=torch.ones_like(alpha)), drift(x))


def test_interventions_apply_activity_only_on_targets():
    drift, g = _chain(), torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 4, generator=g, dtype=torch.float64)
    kappa = torch.full((2, 4), -1.5, dtype=torch.float64)
    m = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.float64)
    iv = Interventions(m, torch.zeros(2, 4, dtype=torch.float64), activity=kappa)
    f = intervened_drift(drift, x, iv)
    alpha = torch.tensor([[torch.e ** -1.5, 1, 1, 1], [1, 1, 1, 1]], dtype=torch.float64)
    assert torch.allclose(f, drift(x, activity=alpha[:, None]))
    assert torch.allclose(f[1], drift(x[1]))
    assert iv.index(torch.tensor([1])).activity.shape == (1, 4)


def test_activity_around_the_origin_is_coordinate_free():
    """A model in standardised coordinates z = (x − μ₀)/s₀ with origin o = −μ₀/s₀ gives the
    same intervened law as the raw model with activity around 0 (what GIM relies on)."""
    raw = _chain()
    mu0 = torch.tensor([1.0, 1.8, 1.9, 0.4], dtype=torch.float64)
    s0 = torch.tensor([0.5, 0.8, 1.2, 0.7], dtype=torch.float64)
    std = LinearDrift(4).double()
    with torch.no_grad():  # W' = S⁻¹ W S, b' = S⁻¹ (W μ₀ + b), σ' = σ / s₀
        Wz = raw.W / s0[:, None] * s0[None, :]
        std.w_off.copy_(Wz + torch.eye(4, dtype=torch.float64))
        std.b.copy_((raw.W @ mu0 + raw.b) / s0)
        std.log_sigma.copy_(raw.log_sigma - s0.log())
    alpha = torch.tensor([[0.1, 1.0, 0.5, 1.0]], dtype=torch.float64)
    zero = torch.zeros(1, 4, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x = sample_stationary(raw, zero, raw.log_sigma.expand(1, 4), 20000, activity=alpha,
                          generator=g)
    z = sample_stationary(std, zero, std.log_sigma.expand(1, 4), 20000, activity=alpha,
                          origin=-mu0 / s0, generator=g)
    torch.testing.assert_close(z.mean(1) * s0 + mu0, x.mean(1), atol=0.03, rtol=0)
    torch.testing.assert_close(z.std(1) * s0, x.std(1), atol=0.03, rtol=0)
    # the same drift values, point by point
    xs = torch.randn(1, 5, 4, generator=g, dtype=torch.float64)
    f_raw = raw(xs, activity=alpha[:, None])
    f_std = std((xs - mu0) / s0, activity=alpha[:, None], origin=-mu0 / s0)
    torch.testing.assert_close(f_std * s0, f_raw)
