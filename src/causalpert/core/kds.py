"""Kernel deviation from stationarity (KDS), closed form for the RBF kernel.

For the generator (L h)(x) = f(x)·∇h(x) + ½ Σ_j σ_j² ∂²h/∂x_j², a distribution p is stationary
iff E_p[L h] = 0 for all h; over an RKHS with kernel k, KDS = E_{x,y∼p}[L_x L_y k(x, y)].
With k = exp(−‖r‖²/(2h²)), r = x − y, D = diag(σ²), S = Σσ_j², q = rᵀDr/h⁴ − S/h²:

    L_x L_y k / k =  f(x)·f(y)/h² − (f(x)·r)(f(y)·r)/h⁴
                   + ½ [ q (f(y)·r)/h² − 2 f(y)ᵀD r/h⁴ ]
                   + ½ [ −q (f(x)·r)/h² + 2 f(x)ᵀD r/h⁴ ]
                   + ¼ [ q² − 4 rᵀD²r/h⁶ + 2 Σσ_j⁴/h⁴ ]

The pairwise estimators never build the [n, n, d] tensor of differences: every inner product of
r is expanded into Gram matrices (three batched matmuls, ``_Grams``), so the cost is O(K n² d)
time and O(K n²) memory. The linear estimator pairs the two halves of a batch: O(K n d).
"""

from __future__ import annotations

import torch

ESTIMATORS = ("u", "v", "linear")


def _grams(x: torch.Tensor, f: torch.Tensor, D: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """x xᵀ, x D xᵀ, x D² xᵀ, f fᵀ, f xᵀ, f D xᵀ [K, n, n] and Σ x², Σ D x², Σ D² x² [K, n]."""
    xD = x * D[:, None, :]
    x2 = x * x
    Dc = D[:, :, None]
    xx = x @ x.transpose(1, 2)
    XD = xD @ torch.cat([x, xD], 1).transpose(1, 2)  # [K, n, 2n]: x D xᵀ | x D² xᵀ
    F = f @ torch.cat([f, x, xD], 1).transpose(1, 2)  # [K, n, 3n]: f fᵀ | f xᵀ | f D xᵀ
    n = x.shape[1]
    return (xx, XD[..., :n], XD[..., n:], F[..., :n], F[..., n:2 * n], F[..., 2 * n:],
            x2.sum(-1), (x2 @ Dc)[..., 0], (x2 @ (Dc * Dc))[..., 0])


class _Grams(torch.autograd.Function):
    """``_grams`` with a hand-written backward for cells x that need no gradient (training:
    data), O(K n² d) in 6 n²d-sized products instead of autograd's ~14:

        ∂/∂f = [G_ff + G_ffᵀ | G_fx | G_fDx] [f; x; x D]
        ∂/∂D = Σ_a x_a ⊙ ([M₁ | G_fDxᵀ] [x; f])_a + 2 Σ_a (x D)_a ⊙ (M₂ x)_a,

    M₁ = G_xDx + diag(g_nD), M₂ = G_xD²x + diag(g_nD²) (a norm Σ_j w_j x_aj² is the diagonal
    of the Gram x diag(w) xᵀ)."""

    @staticmethod
    def forward(ctx, x, f, D):
        ctx.save_for_backward(x, f, D)
        with torch.no_grad():
            return _grams(x, f, D)

    @staticmethod
    def backward(ctx, g_xx, g_xDx, g_xD2x, g_ff, g_fx, g_fDx, g_na, g_nD, g_nD2):
        x, f, D = ctx.saved_tensors
        K, n, _ = x.shape
        zero = x.new_zeros(K, n, n)
        g_ff, g_fx, g_fDx, g_xDx, g_xD2x = (zero if g is None else g for g in
                                            (g_ff, g_fx, g_fDx, g_xDx, g_xD2x))
        xD = x * D[:, None, :]
        grad_f = grad_D = None
        if ctx.needs_input_grad[1]:
            grad_f = torch.cat([g_ff + g_ff.transpose(1, 2), g_fx, g_fDx], 2) @ torch.cat(
                [f, x, xD], 1)
        if ctx.needs_input_grad[2]:
            M1, M2 = g_xDx, g_xD2x
            if g_nD is not None:
                M1 = M1 + torch.diag_embed(g_nD)
            if g_nD2 is not None:
                M2 = M2 + torch.diag_embed(g_nD2)
            A = torch.cat([M1, g_fDx.transpose(1, 2)], 2) @ torch.cat([x, f], 1)
            grad_D = (x * A).sum(1) + 2 * (xD * (M2 @ x)).sum(1)
        return None, grad_f, grad_D


def _pair_terms(x: torch.Tensor, f: torch.Tensor, D: torch.Tensor) -> dict[str, torch.Tensor]:
    """Inner products of r = x_a − x_b for all pairs of one set of cells, from Gram matrices.

    Shapes: x, f [K, n, d]; D [K, d]. Returns tensors [K, n, n]. The pairs are symmetric:
    f(x_b)·r = −(f(x_a)·r)ᵀ, likewise with D, so those are transposes. The Grams come from
    ``_Grams`` (hand-written backward) unless x itself needs a gradient.
    """
    return _terms_from_grams(_grams(x, f, D) if x.requires_grad else _Grams.apply(x, f, D))


def _terms_from_grams(grams) -> dict[str, torch.Tensor]:
    xx, xDx, xD2x, ff, fx, fDx, na, nD, nD2 = grams

    def sq_dist(norms, gram):  # Σ_j w_j (x_aj − x_bj)²
        return (norms[:, :, None] + norms[:, None, :] - 2 * gram).clamp_min(0)

    fx_r = torch.diagonal(fx, dim1=1, dim2=2)[:, :, None] - fx  # f(x_a)·r
    fxDr = torch.diagonal(fDx, dim1=1, dim2=2)[:, :, None] - fDx  # f(x_a)ᵀ D r
    return {
        "rr": sq_dist(na, xx),
        "rDr": sq_dist(nD, xDx),
        "rD2r": sq_dist(nD2, xD2x),
        "ff": ff,
        "fx_r": fx_r,
        "fy_r": -fx_r.transpose(1, 2),  # f(x_b)·r
        "fxDr": fxDr,
        "fyDr": -fxDr.transpose(1, 2),  # f(x_b)ᵀ D r
    }


def _stein_kernel(t: dict[str, torch.Tensor], D: torch.Tensor, h: float) -> torch.Tensor:
    """L_x L_y k from the pair terms (any broadcastable shapes); D [K, d]."""
    h2 = h * h
    extra = (None,) * (t["rr"].dim() - 1)
    S = D.sum(-1)[(slice(None), *extra)]
    S4 = (D * D).sum(-1)[(slice(None), *extra)]
    q = t["rDr"] / h2**2 - S / h2
    val = (
        t["ff"] / h2
        - t["fx_r"] * t["fy_r"] / h2**2
        + 0.5 * (q * t["fy_r"] / h2 - 2 * t["fyDr"] / h2**2)
        + 0.5 * (-q * t["fx_r"] / h2 + 2 * t["fxDr"] / h2**2)
        + 0.25 * (q * q - 4 * t["rD2r"] / h2**3 + 2 * S4 / h2**2)
    )
    return val * torch.exp(-t["rr"] / (2 * h2))


def _check(x, f, sigma2):
    if x.dim() != 3 or f.shape != x.shape or sigma2.shape != (x.shape[0], x.shape[2]):
        raise ValueError(
            f"kds expects x, f [K, n, d] and sigma2 [K, d]; got {tuple(x.shape)}, "
            f"{tuple(f.shape)}, {tuple(sigma2.shape)}"
        )
    if x.shape[1] < 2:
        raise ValueError("kds needs at least 2 cells per context")


def _linear_terms(x, f, sigma2):
    m = x.shape[1] // 2
    xa, xb, fa, fb = x[:, :m], x[:, m : 2 * m], f[:, :m], f[:, m : 2 * m]
    D1 = sigma2[:, None, :]
    r = xa - xb
    t = {
        "rr": (r * r).sum(-1),
        "rDr": (r * r * D1).sum(-1),
        "rD2r": (r * r * D1 * D1).sum(-1),
        "ff": (fa * fb).sum(-1),
        "fx_r": (fa * r).sum(-1),
        "fy_r": (fb * r).sum(-1),
        "fxDr": (fa * D1 * r).sum(-1),
        "fyDr": (fb * D1 * r).sum(-1),
    }
    return t, r


def _pair_mean(gram: torch.Tensor, estimator: str) -> torch.Tensor:
    """Mean of a [K, n, n] pair matrix over all pairs (V) or pairs a ≠ b (U)."""
    n = gram.shape[-1]
    if estimator == "v":
        return gram.mean((-1, -2))
    diag = torch.diagonal(gram, dim1=-2, dim2=-1).sum(-1)
    return (gram.sum((-1, -2)) - diag) / (n * (n - 1))


def kds(
    x: torch.Tensor,
    f: torch.Tensor,
    sigma2: torch.Tensor,
    *,
    bandwidth: float,
    estimator: str = "u",
) -> torch.Tensor:
    """KDS of each context's cells under its (intervened) drift.

    Args:
        x: cells [K, n, d] (n ≥ 2 per context).
        f: drift f_I(x) at those cells [K, n, d].
        sigma2: squared noise scales σ_I² [K, d].
        bandwidth: RBF bandwidth h.
        estimator: ``"u"`` (U-statistic, pairs a ≠ b; unbiased, the default), ``"v"``
            (V-statistic, all pairs; its diagonal term biases small contexts) or ``"linear"``
            (disjoint pairs (x_i, x_{i+n/2}); O(n d), higher variance).

    Returns:
        KDS estimate per context [K].
    """
    return kds_bernoulli(x, f, None, sigma2, bandwidth=bandwidth, estimator=estimator)


def kds_bernoulli(
    x: torch.Tensor,
    f: torch.Tensor,
    shift_var: torch.Tensor | None,
    sigma2: torch.Tensor,
    *,
    bandwidth: float,
    estimator: str = "u",
) -> torch.Tensor:
    """E_s[KDS] for a random drift shift s with independent coordinates, in closed form.

    KDS is quadratic in a constant shift s of the drift; its only quadratic part per pair is
    sᵀ(I/h² − r rᵀ/h⁴)s · k(a, b). Hence, with f evaluated at the mean shift E[s],

        E_s[KDS(s)] = KDS(E[s]) + Σ_j Var[s_j] · E_pairs[k (1/h² − r_j²/h⁴)].

    For Bernoulli targets m_j ~ B(π_j) and shifts u_j: E[s] = π ⊙ u, Var[s] = π(1 − π) u², so
    the expectation over masks is exact — no relaxation, no sampling noise.

    Args:
        x: cells [K, n, d]; f: drift at the mean shift, f(x) + E[s] [K, n, d].
        shift_var: Var[s] [K, d], or None (a deterministic shift: plain KDS).
        sigma2: σ_I² [K, d]. bandwidth, estimator: as in ``kds``.

    Returns:
        [K] expected KDS per context.
    """
    _check(x, f, sigma2)
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown KDS estimator {estimator!r}; choose one of {ESTIMATORS}")
    h2 = bandwidth * bandwidth
    if estimator == "linear":
        t, r = _linear_terms(x, f, sigma2)
        out = _stein_kernel(t, sigma2, bandwidth).mean(-1)
        if shift_var is not None:
            k = torch.exp(-t["rr"] / (2 * h2))[..., None]  # [K, m, 1]
            curv = (k * (1 / h2 - r * r / h2**2)).mean(1)  # [K, d]
            out = out + (shift_var * curv).sum(-1)
        return out
    t = _pair_terms(x, f, sigma2)
    out = _pair_mean(_stein_kernel(t, sigma2, bandwidth), estimator)
    if shift_var is not None:
        out = out + (shift_var * _shift_curvature(x, t["rr"], h2, estimator)).sum(-1)
    return out


def _shift_curvature(x: torch.Tensor, rr: torch.Tensor, h2: float, estimator: str
                     ) -> torch.Tensor:
    """C_j = E_pairs[k (1/h² − r_j²/h⁴)] [K, d], the coefficient of δ_j² in the KDS under a
    constant drift shift δ (pairwise estimators ``"u"``/``"v"``); rr [K, n, n] = ‖r‖²."""
    k = torch.exp(-rr / (2 * h2))  # [K, n, n], symmetric
    # Σ_ab k_ab (x_aj − x_bj)² = 2 Σ_a x_aj² κ_a − 2 Σ_a x_aj (K x)_aj, κ = K·1 (diag: r = 0)
    kappa = k.sum(-1, keepdim=True)
    kr2 = 2 * (x * x * kappa).sum(1) - 2 * (x * (k @ x)).sum(1)  # [K, d]
    n = x.shape[1]
    if estimator == "v":
        mean_k, mean_kr2 = k.mean((-1, -2)), kr2 / n**2
    else:
        mean_k = (k.sum((-1, -2)) - n) / (n * (n - 1))
        mean_kr2 = kr2 / (n * (n - 1))
    return mean_k[:, None] / h2 - mean_kr2 / h2**2


def stein_kernel_autodiff(x, y, drift_fn, sigma2: torch.Tensor, *, bandwidth: float):
    """Reference L_x L_y k(x, y) for one pair by automatic differentiation (float64 only; tests,
    benchmarks).

    Args:
        x, y: single cells [d]. drift_fn: maps [d] → [d]. sigma2: [d].
    """
    from torch.func import grad, hessian

    h2 = bandwidth**2

    def k(a, b):
        return torch.exp(-((a - b) ** 2).sum() / (2 * h2))

    def ly_k(a, b):  # L_y k(a, y)|_{y=b}
        gy = grad(k, argnums=1)(a, b)
        hy = torch.diagonal(hessian(k, argnums=1)(a, b))
        return drift_fn(b) @ gy + 0.5 * (sigma2 * hy).sum()

    gx = grad(ly_k, argnums=0)(x, y)
    hx = torch.diagonal(hessian(ly_k, argnums=0)(x, y))
    return drift_fn(x) @ gx + 0.5 * (sigma2 * hx).sum()


def kds_autodiff(x, drift_fn, sigma2, *, bandwidth: float, estimator: str = "u"):
    """KDS of one context [n, d] by autodiff of the kernel (slow; the reference for ``kds``)."""
    from torch.func import vmap

    n = x.shape[0]
    pair = vmap(vmap(lambda a, b: stein_kernel_autodiff(a, b, drift_fn, sigma2,
                                                        bandwidth=bandwidth),
                     in_dims=(None, 0)), in_dims=(0, None))
    if estimator == "linear":
        m = n // 2
        return torch.stack([
            stein_kernel_autodiff(x[i], x[m + i], drift_fn, sigma2, bandwidth=bandwidth)
            for i in range(m)
        ]).mean()
    gram = pair(x, x)
    if estimator == "v":
        return gram.mean()
    return (gram.sum() - gram.diagonal().sum()) / (n * (n - 1))


def kds_shift_gain(
    x: torch.Tensor,
    f: torch.Tensor,
    sigma2: torch.Tensor,
    *,
    bandwidth: float,
    estimator: str = "u",
    pooled: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The KDS drop from the best constant drift shift on each gene alone (a score test for
    adding gene j as an intervention target).

    KDS is exactly quadratic in a constant shift δ e_j of the drift: KDS(δ) = K₀ + 2B_j δ +
    C_j δ² with B_j = ½ ∂KDS/∂δ_j (one backward pass) and, from the pair terms,
    C_j = mean_pairs k(a, b) (1/h² − r_j²/h⁴) (``_shift_curvature``, shared with
    ``kds_bernoulli``). The best shift is δ*_j = −B_j / C_j and the
    drop R_j = B_j² / C_j ≥ 0. Cost: one forward pass of ``kds`` (the Grams, O(K n² d));
    B needs only the column sums of the f-Grams' gradients (O(K n d)), and C reuses ‖r‖².

    Args:
        x, f, sigma2, bandwidth: as for ``kds`` (x, f [K, n, d], sigma2 [K, d]).
        estimator: ``"u"`` or ``"v"`` (the pairwise estimators).
        pooled: the K batches are disjoint blocks of one sample sharing one shift: B and C
            are averaged over the blocks first (the mean of the blocks' KDS is quadratic in δ
            too), so every cell counts at a cost linear in the number of blocks.

    Returns:
        (R, δ*), each [K, d] ([1, d] when pooled).
    """
    if estimator not in ("u", "v"):
        raise ValueError(f"kds_shift_gain needs a pairwise estimator ('u' or 'v'), got "
                         f"{estimator!r}")
    h2 = bandwidth**2
    with torch.no_grad():
        grams = list(_grams(x.detach(), f.detach(), sigma2.detach()))
    with torch.enable_grad():  # KDS's gradient w.r.t. the f-Grams: elementwise, O(K n²)
        for i in (3, 4, 5):  # f fᵀ, f xᵀ, f D xᵀ
            grams[i].requires_grad_(True)
        t = _terms_from_grams(grams)
        value = _pair_mean(_stein_kernel(t, sigma2, bandwidth), estimator).sum()
        g_ff, g_fx, g_fDx = torch.autograd.grad(value, grams[3:6])
    with torch.no_grad():
        # ∂KDS/∂δ = Σ_a ∂KDS/∂f_a; with ∂/∂f = [G_ff + G_ffᵀ | G_fx | G_fDx] [f; x; x D]
        # (``_Grams``) the sum over a needs only the Grams' column sums: O(K n d), not n² d
        col = torch.cat([g_ff.sum(1) + g_ff.sum(2), g_fx.sum(1), g_fDx.sum(1)], 1)[:, None]
        grad = (col @ torch.cat([f, x, x * sigma2[:, None, :]], 1))[:, 0]  # [K, d]
        C = _shift_curvature(x, t["rr"].detach(), h2, estimator)
        B = grad / 2
        if pooled:
            B, C = B.mean(0, keepdim=True), C.mean(0, keepdim=True)
        return B**2 / C, -B / C
