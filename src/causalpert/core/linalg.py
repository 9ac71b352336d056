"""Linear algebra of the linear stationary diffusion: stability and the Lyapunov equation."""

from __future__ import annotations

import numpy as np
import torch


class UnstableDriftError(ValueError):
    """The drift matrix is not Hurwitz, so the linear SDE has no stationary law."""


def max_real_eigenvalue(W: torch.Tensor) -> float:
    """Largest real part of the eigenvalues of W [d, d] (< 0 ⇔ W is Hurwitz, i.e. stable)."""
    return torch.linalg.eigvals(W.detach().double()).real.max().item()


def check_stable(W: torch.Tensor, *, margin: float = 0.0) -> float:
    """Raise ``UnstableDriftError`` unless max Re eig(W) < −margin; return that eigenvalue."""
    lam = max_real_eigenvalue(W)
    if not lam < -margin:
        raise UnstableDriftError(
            f"drift matrix is not stable (largest real eigenvalue {lam:.4g} ≥ {-margin:.4g}): "
            "no stationary law exists; sample with Euler–Maruyama for a finite horizon or refit "
            "with a stronger stability penalty"
        )
    return lam


def solve_lyapunov(W: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """Solve W P + P Wᵀ + Q = 0 for P, batched over Q (``LyapunovSolver(W)(Q)``)."""
    return LyapunovSolver(W)(Q)


class LyapunovSolver:
    """Solves W P + P Wᵀ + Q = 0 for many Q with one real Schur form W = U T Uᵀ.

    Bartels–Stewart: T X + X Tᵀ = −Uᵀ Q U, P = U X Uᵀ. The Schur form stays exact for the
    defective, repeated eigenvalue −1 that every acyclic part of a graph gives W (an
    eigendecomposition does not). It is computed once (O(d³), ~0.6 s at d = 1,000); each solve
    is then a recursive blocked triangular solve (``_lyapunov_schur``, matrix products) instead
    of LAPACK's level-2 trsyl on the whole matrix (2.3 s at d = 1,000, as in scipy's
    ``solve_continuous_lyapunov``, which also redoes the Schur form every call). float64 on
    the CPU; identical right-hand sides of a batch are solved once.

    Args:
        W: stable drift matrix [d, d].
        block: size below which trsyl solves a block directly.
    """

    def __init__(self, W: torch.Tensor, *, block: int = 64):
        from scipy.linalg import schur

        self.W = W.detach().to("cpu", torch.float64).numpy()
        self.T, self.U = schur(self.W, output="real")
        self.block = block

    def solve_numpy(self, Q: np.ndarray) -> np.ndarray:
        """P [d, d] (float64, symmetrised) for one symmetric Q [d, d]."""
        U = self.U
        X = _lyapunov_schur(self.T, -(U.T @ Q @ U), self.block)
        P = U @ X @ U.T
        return 0.5 * (P + P.T)

    def __call__(self, Q: torch.Tensor) -> torch.Tensor:
        """P [..., d, d] for symmetric Q [..., d, d], in the dtype and device of Q."""
        Qn = Q.detach().to("cpu", torch.float64).reshape(-1, *Q.shape[-2:]).numpy()
        # identical right-hand sides found by their bytes: np.unique(axis=0) on [B, d, d]
        # compares rows of d² structured fields and took ~25 s per call at d = 1,000
        first: dict[bytes, int] = {}
        inverse = np.array([first.setdefault(q.tobytes(), len(first)) for q in Qn])
        rows = np.unique(inverse, return_index=True)[1]  # the first Q of each distinct one
        sols = np.stack([self.solve_numpy(Qn[r]) for r in rows])[inverse]
        return torch.from_numpy(sols).reshape(Q.shape).to(dtype=Q.dtype, device=Q.device)


def _split(T: np.ndarray, k: int) -> int:
    """A split index near k that does not cut a 2×2 block (complex pair) of a real Schur T."""
    return k + 1 if 0 < k < len(T) and T[k, k - 1] != 0 else k


def _trsyl(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """LAPACK trsyl: X with A X + X Bᵀ = C, A and B quasi-upper-triangular."""
    from scipy.linalg.lapack import dtrsyl

    X, scale, info = dtrsyl(A, B, C, tranb="T")
    if info < 0 or scale != 1.0:
        raise np.linalg.LinAlgError(f"trsyl failed (info {info}, scale {scale})")
    return X


def _sylvester_schur(A: np.ndarray, B: np.ndarray, C: np.ndarray, block: int) -> np.ndarray:
    """X with A X + X Bᵀ = C for quasi-upper-triangular A [m, m], B [n, n].

    Recursive blocking (Jonsson & Kågström, RECSY): with A = [[A₁₁, A₁₂], [0, A₂₂]] the lower
    rows solve A₂₂ X₂ + X₂ Bᵀ = C₂, then A₁₁ X₁ + X₁ Bᵀ = C₁ − A₁₂ X₂; splitting B instead,
    A X₂ + X₂ B₂₂ᵀ = C₂, then A X₁ + X₁ B₁₁ᵀ = C₁ − X₂ B₁₂ᵀ.
    """
    m, n = len(A), len(B)
    if m <= block and n <= block:
        return _trsyl(A, B, C)
    if m >= n:
        k = _split(A, m // 2)
        X2 = _sylvester_schur(A[k:, k:], B, C[k:], block)
        X1 = _sylvester_schur(A[:k, :k], B, C[:k] - A[:k, k:] @ X2, block)
        return np.vstack([X1, X2])
    k = _split(B, n // 2)
    X2 = _sylvester_schur(A, B[k:, k:], C[:, k:], block)
    X1 = _sylvester_schur(A, B[:k, :k], C[:, :k] - X2 @ B[:k, k:].T, block)
    return np.hstack([X1, X2])


def _lyapunov_schur(T: np.ndarray, C: np.ndarray, block: int) -> np.ndarray:
    """Symmetric X with T X + X Tᵀ = C (C symmetric, T quasi-upper-triangular).

    With T = [[T₁₁, T₁₂], [0, T₂₂]]: T₂₂ X₂₂ + X₂₂ T₂₂ᵀ = C₂₂, then the Sylvester equation
    T₁₁ X₁₂ + X₁₂ T₂₂ᵀ = C₁₂ − T₁₂ X₂₂, then T₁₁ X₁₁ + X₁₁ T₁₁ᵀ = C₁₁ − M − Mᵀ, M = T₁₂ X₁₂ᵀ.
    """
    d = len(T)
    if d <= block:
        return _trsyl(T, T, C)
    k = _split(T, d // 2)
    T11, T12, T22 = T[:k, :k], T[:k, k:], T[k:, k:]
    X22 = _lyapunov_schur(T22, C[k:, k:], block)
    X12 = _sylvester_schur(T11, T22, C[:k, k:] - T12 @ X22, block)
    M = T12 @ X12.T
    X11 = _lyapunov_schur(T11, C[:k, :k] - M - M.T, block)
    return np.block([[X11, X12], [X12.T, X22]])


class LeadingEigenvalue:
    """Differentiable λ = max Re eig(W) at O(d²) per call between O(d³) refreshes.

    With right and left eigenvectors x, y of the leading eigenvalue (W x = λ x, Wᵀ y = λ y),
    the Rayleigh quotient λ(W) ≈ Re(yᵀ W x / yᵀ x) = ⟨G, W⟩, G = Re(y xᵀ / yᵀ x), equals λ at
    the W where x, y were computed and has the exact gradient there, ∂λ/∂W = G (first-order
    perturbation theory); between refreshes it is linear in W. G is recomputed every
    ``refresh_every`` calls (1: exact every call, for small d; at d = 1,000 a refresh costs
    ~0.45 s, see ``_leading_vectors``, a call ~1 ms).

    ``lag`` > 0 computes each refresh but the first in a background thread (the second core
    while training runs on the first) from a copy of W at the due call, and installs it
    exactly ``lag`` calls later (waiting for it if need be): the same G at the same call on
    every run, so fits stay reproducible; G is then ``lag`` calls older than with ``lag`` = 0.
    """

    def __init__(self, refresh_every: int = 1, lag: int = 0):
        if refresh_every < 1:
            raise ValueError(f"refresh_every must be ≥ 1, got {refresh_every}")
        if not 0 <= lag < refresh_every:
            raise ValueError(f"lag must be in [0, refresh_every), got {lag}")
        self.refresh_every, self.lag = refresh_every, lag
        self.calls = 0
        self.G: torch.Tensor | None = None  # ∂λ/∂W at the last refresh [d, d]
        self.value: float | None = None  # λ at the last refresh
        self._pending = None  # (call at which to install, future of (G, value))

    def due(self) -> bool:
        """Whether the next call computes the eigenvectors (now, or in the background)."""
        return self.G is None or self.calls % self.refresh_every == 0

    def update(self, W: torch.Tensor) -> bool:
        """The bookkeeping of one call (without the product): refresh when due; True when
        this call installed a new G (and ``value``)."""
        installed = False
        if self._pending is not None and self._pending[0] == self.calls:
            self.G, self.value = self._pending[1].result()
            self._pending, installed = None, True
        if self.due():
            if self.G is None or self.lag == 0:
                self.G, self.value = _gradient_and_value(W)
                installed = True
            else:
                self._pending = (self.calls + self.lag,
                                 _background().submit(_gradient_and_value, W.detach().clone()))
        self.calls += 1
        return installed

    def refresh(self, W: torch.Tensor) -> None:
        """Recompute G and ``value`` at W now."""
        self.G, self.value = _gradient_and_value(W)

    def __call__(self, W: torch.Tensor) -> torch.Tensor:
        self.update(W)
        return (W * self.G).sum()


_EXECUTOR = None


def _background():
    """One worker thread for lagged refreshes (LAPACK releases the GIL)."""
    global _EXECUTOR
    if _EXECUTOR is None:
        from concurrent.futures import ThreadPoolExecutor

        _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="causalpert-eig")
    return _EXECUTOR


def _gradient_and_value(W: torch.Tensor) -> tuple[torch.Tensor, float]:
    """G = Re(y xᵀ / yᵀ x) (``LeadingEigenvalue``) and λ = ⟨G, W⟩ at W."""
    x, y = _leading_vectors(W[None])
    G = (y[0][:, None] * x[0][None, :] / (y[0] @ x[0])).real
    G = G.to(dtype=W.dtype, device=W.device)
    return G, float((G * W.detach().to(G.device, G.dtype)).sum())


def _leading_vectors(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Right and left eigenvectors x, y [K, d] (complex, detached) of the eigenvalue with the
    largest real part of each W_k [K, d, d].

    The eigenvalues alone (Hessenberg + QR, no vectors: 0.40 s at d = 1,000), then inverse
    iteration with the exact shift λ for both vectors from one LU of W − λI (0.05 s): less
    than half of two full eigendecompositions (1.15 s). A residual check falls back to them.
    """
    Wd = W.detach().to("cpu", torch.float64)
    lead = torch.linalg.eigvals(Wd)
    lead = lead.gather(-1, lead.real.argmax(-1, keepdim=True))[:, 0]  # [K]
    pairs = [_inverse_iteration(Wk.numpy(), complex(lam)) for Wk, lam in zip(Wd, lead, strict=True)]
    if any(p is None for p in pairs):
        return _leading_vectors_eig(Wd, W.device)
    x, y = (torch.from_numpy(np.stack(v)).to(W.device) for v in zip(*pairs, strict=True))
    return x, y


def _inverse_iteration(W: np.ndarray, lam: complex, *, iters: int = 3, tol: float = 1e-8
                       ) -> tuple[np.ndarray, np.ndarray] | None:
    """Unit x, y with W x ≈ λ x and Wᵀ y ≈ λ y: inverse iteration (W − λ̃I)⁻¹ from a fixed
    start, λ̃ = λ nudged by 1e-10 |λ| off the exact singularity; None if the relative
    residuals are not below ``tol`` after ``iters`` steps."""
    from scipy.linalg import lu_factor, lu_solve

    d = len(W)
    shift = lam + 1e-10 * (1 + abs(lam))
    dtype = np.float64 if lam.imag == 0 else np.complex128
    lu = lu_factor(W - shift.real * np.eye(d) if dtype == np.float64
                   else W - shift * np.eye(d), check_finite=False)
    scale = np.abs(W).sum(1).max()
    out = []
    for trans, M in ((0, W), (1, W.T)):
        v = np.cos(np.arange(d) + 1.0).astype(dtype)  # a fixed start with no symmetry
        for _ in range(iters):
            v = lu_solve(lu, v, trans=trans, check_finite=False)
            v = v / np.linalg.norm(v)
            if np.linalg.norm(M @ v - lam * v) < tol * scale:
                break
        else:
            return None
        out.append(v.astype(np.complex128))
    return out[0], out[1]


def _leading_vectors_eig(Wd: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``_leading_vectors`` by two full eigendecompositions (W and Wᵀ)."""
    vals, vecs = torch.linalg.eig(Wd)
    i = vals.real.argmax(-1)
    lead = vals.gather(-1, i[:, None])  # [K, 1]
    lvals, lvecs = torch.linalg.eig(Wd.transpose(-1, -2))
    j = (lvals - lead).abs().argmin(-1)
    d = Wd.shape[-1]
    x = vecs.gather(-1, i[:, None, None].expand(-1, d, 1))[..., 0].to(device)
    y = lvecs.gather(-1, j[:, None, None].expand(-1, d, 1))[..., 0].to(device)
    return x, y


def leading_eigenvalues(W: torch.Tensor) -> torch.Tensor:
    """max Re eig(W_k) [K] for a batch W [K, d, d], differentiable without backpropagating
    through an eigendecomposition: Re(y_kᵀ W_k x_k / y_kᵀ x_k) with the (detached) right and
    left leading eigenvectors, exact in value and gradient (as in ``LeadingEigenvalue``)."""
    x, y = _leading_vectors(W)
    num = torch.einsum("ki,kij,kj->k", y, W.to(x.dtype), x)
    return (num / (y * x).sum(-1)).real.to(W.dtype)
