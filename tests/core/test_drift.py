"""Drift models: edge conventions, fixed diagonal, the MLP formula, sparsity."""

import torch

from causalpert.core import LinearDrift, MLPDrift, hill


def test_linear_graph_convention_and_fixed_diagonal():
    drift = LinearDrift(3)
    with torch.no_grad():
        drift.w_off.zero_()
        drift.w_off[2, 0] = 1.5  # W[j=2, i=0]: edge 0 → 2
        drift.w_off[1, 1] = 7.0  # a diagonal entry of the free tensor is ignored
    G = drift.graph()
    assert G[0, 2] == 1.5 and G.abs().sum() == 1.5
    assert torch.equal(torch.diagonal(drift.W), -torch.ones(3))
    x = torch.tensor([[1.0, 2.0, 3.0]])
    torch.testing.assert_close(drift(x), torch.tensor([[-1.0, -2.0, -3.0 + 1.5]]))
    drift(torch.randn(5, 3)).sum().backward()
    assert torch.all(torch.diagonal(drift.w_off.grad) == 0)  # the diagonal never moves


def test_mlp_matches_the_written_formula():
    g = torch.Generator().manual_seed(0)
    d, H = 4, 3
    drift = MLPDrift(d, hidden=H, init_scale=1.0, generator=g)
    with torch.no_grad():
        drift.a.normal_(generator=g)
        drift.b.normal_(generator=g)
    x = torch.randn(7, d, generator=g)
    expected = torch.zeros(7, d)
    for j in range(d):
        acc = -x[:, j] + drift.b[j]
        for h in range(H):
            pre = sum(drift.A[j, i, h] * x[:, i] for i in range(d) if i != j) + drift.a[j, h]
            acc = acc + drift.v[j, h] * torch.tanh(pre)
        expected[:, j] = acc
    torch.testing.assert_close(drift(x), expected.detach())
    torch.testing.assert_close(drift(x[None]).squeeze(0), drift(x))  # any leading shape
    G = drift.graph()
    assert torch.allclose(G[1, 2], drift.A[2, 1].norm()) and torch.all(G.diagonal() == 0)


def test_sparsity_is_zero_only_without_edges():
    drift = LinearDrift(4)
    with torch.no_grad():
        drift.w_off.zero_()
    assert drift.sparsity() < 1e-4
    with torch.no_grad():
        drift.w_off[0, 1] = 2.0  # one edge: incoming group 2/d, outgoing group 2/d
    torch.testing.assert_close(drift.sparsity(), torch.tensor(1.0), atol=1e-4, rtol=0)


def test_hill_dose_response():
    c = torch.tensor([0.0, 0.5, 1.0, 2.0, 100.0])
    h = hill(c, torch.tensor(1.0), torch.tensor(2.0))
    torch.testing.assert_close(h, c**2 / (1 + c**2))
    assert h[0] == 0 and torch.all(h[1:] > h[:-1])
