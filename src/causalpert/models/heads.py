"""Feature heads with predictive variance: ridge or an RBF kernel ridge, chosen by
leave-one-perturbation-out cross-validation (never on test data).

Both heads are the posterior mean of a Gaussian process on the standardised features x̃ with
noise σ² and prior covariance (σ²/α) k(x̃, x̃′): the linear kernel k = x̃ᵀx̃′ plus an unpenalised
intercept (ridge, ``ridge.fit_ridge_cv``), or the RBF kernel k = exp(−‖x̃ − x̃′‖² / ℓ²) around
the training mean, ℓ² = s · m with m the median squared distance between training rows and
s ∈ ``LENGTH_SCALES``. A linear head limits what an unseen drug can get to a linear function
of its features; the RBF head can bend, and it shrinks to the training mean far from the data.
The variance of the head's mean at x̃,

    v(x̃) = σ²/α · (k(x̃, x̃) − k*ᵀ (K + αI)⁻¹ k*)        (k* = k(X̃, x̃), K = k(X̃, X̃)),

with σ² the cross-validated mean squared error, is ≈ 0 at a training perturbation and grows
with the distance from them (the intercept's own σ²/n is left out). ``select_head`` fits both
and keeps the one with the lower cross-validated error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ridge import ALPHA_GRID, RidgeFit, fit_ridge_cv, ridge_path, standardise

#: RBF length scales tried, as multiples s of the median squared distance m (ℓ² = s m).
LENGTH_SCALES = (0.25, 1.0, 4.0)
HEADS = ("ridge", "rbf", "cv")


def _rbf(A: np.ndarray, B: np.ndarray, ell2: float) -> np.ndarray:
    d2 = (A**2).sum(1)[:, None] + (B**2).sum(1)[None] - 2 * A @ B.T
    return np.exp(-np.maximum(d2, 0.0) / ell2)


def _posterior_variance(kxx: np.ndarray, kx: np.ndarray, K: np.ndarray, alpha: float,
                        noise: float) -> np.ndarray:
    """v = σ²/α · (k(x, x) − k*ᵀ (K + αI)⁻¹ k*) for the rows of kx [m, n]."""
    quad = np.einsum("mn,nm->m", kx, np.linalg.solve(K + alpha * np.eye(len(K)), kx.T))
    return np.maximum(noise / alpha * (kxx - quad), 0.0)


@dataclass
class LinearHead:
    """The ridge head (``RidgeFit``) with its standardised training inputs, for v(x̃)."""

    ridge: RidgeFit
    train_x: np.ndarray | None  # standardised training inputs [n, q] (centred: same rows)
    noise: float | None  # σ², the cross-validated mean squared error

    kind = "ridge"

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.ridge(X)

    @property
    def alpha(self) -> float:
        return self.ridge.alpha

    @property
    def cv_mse(self) -> float:
        return min(self.ridge.cv_error) if self.ridge.cv_error else float("nan")

    def variance(self, X: np.ndarray) -> np.ndarray | None:
        """v(x̃) [m] (linear kernel); None for heads loaded from checkpoints that predate it."""
        if self.train_x is None or self.noise is None:
            return None
        Xs = (X - self.ridge.x_mean) / self.ridge.x_sd
        T = self.train_x
        return _posterior_variance((Xs**2).sum(1), Xs @ T.T, T @ T.T, self.alpha, self.noise)

    def to_tensors(self, prefix: str) -> dict:
        import torch

        out = self.ridge.to_tensors(prefix)
        if self.train_x is not None:
            out[f"{prefix}.train_x"] = torch.as_tensor(self.train_x)
        return out

    def meta(self) -> dict:
        return {"kind": self.kind, "alpha": self.alpha, "noise": self.noise}


@dataclass
class RBFHead:
    """Kernel ridge with the RBF kernel: f(x̃) = ȳ + k*ᵀ (K + αI)⁻¹ (Y − ȳ)."""

    train_x: np.ndarray  # standardised training inputs [n, q]
    dual: np.ndarray  # (K + αI)⁻¹ (Y − ȳ) [n, d]
    y_mean: np.ndarray  # [d]
    x_mean: np.ndarray
    x_sd: np.ndarray
    alpha: float
    ell2: float  # ℓ²
    noise: float  # σ², the cross-validated mean squared error
    cv_mse: float
    centred: bool = True  # ȳ the training mean; False: ȳ = 0 (a prior mean of zero)

    kind = "rbf"
    PARTS = ("train_x", "dual", "y_mean", "x_mean", "x_sd")

    def _k(self, X: np.ndarray) -> np.ndarray:
        return _rbf((X - self.x_mean) / self.x_sd, self.train_x, self.ell2)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.y_mean + self._k(X) @ self.dual

    def variance(self, X: np.ndarray) -> np.ndarray:
        K = _rbf(self.train_x, self.train_x, self.ell2)
        return _posterior_variance(np.ones(len(X)), self._k(X), K, self.alpha, self.noise)

    def to_tensors(self, prefix: str) -> dict:
        import torch

        return {f"{prefix}.{k}": torch.as_tensor(getattr(self, k)) for k in self.PARTS}

    def meta(self) -> dict:
        return {"kind": self.kind, "alpha": self.alpha, "noise": self.noise, "ell2": self.ell2,
                "cv_mse": self.cv_mse, "centred": self.centred}


def _prior_mean(Y: np.ndarray, centred: bool) -> np.ndarray:
    """ȳ of an RBF head fitted on rows Y: their mean (``centred``) or 0."""
    return Y.mean(0) if centred else np.zeros(Y.shape[1])


def fit_rbf_cv(X: np.ndarray, Y: np.ndarray, groups, alphas=ALPHA_GRID,
               scales=LENGTH_SCALES, *, centred: bool = True) -> RBFHead:
    """RBF kernel ridge, (α, s) by leave-one-group-out CV (≥ 3 groups; else the grid's
    middle), refitted on all rows. The mean ȳ is the training fold's (``centred``) or 0:
    far from every training row the head then predicts 0, not the average row."""
    Xs, x_mean, x_sd = standardise(X)
    groups = np.asarray(groups)
    names = np.unique(groups)
    d2 = ((Xs[:, None] - Xs[None]) ** 2).sum(-1)
    off = d2[~np.eye(len(Xs), dtype=bool)]
    m = float(np.median(off)) if off.size and np.median(off) > 0 else 1.0
    alphas = np.asarray(alphas, dtype=np.float64)
    err = np.zeros((len(scales), len(alphas)))
    if len(names) >= 3:
        for si, s in enumerate(scales):
            K = np.exp(-d2 / (s * m))
            for name in names:
                out = groups == name
                ym = _prior_mean(Y[~out], centred)
                evals, V = np.linalg.eigh(K[np.ix_(~out, ~out)])
                proj = V.T @ (Y[~out] - ym)  # [n, d]
                dual = np.einsum("nr,ard->and", V,
                                 proj[None] / (evals[None, :, None] + alphas[:, None, None]))
                pred = ym + np.einsum("mn,and->amd", K[np.ix_(out, ~out)], dual)
                err[si] += ((Y[out][None] - pred) ** 2).sum(axis=(1, 2))
        err /= Y.size
        si, ai = np.unravel_index(int(np.argmin(err)), err.shape)
    else:
        si, ai = len(scales) // 2, len(alphas) // 2
    ell2, alpha = float(scales[si] * m), float(alphas[ai])
    ym = _prior_mean(Y, centred)
    K = np.exp(-d2 / ell2)
    dual = np.linalg.solve(K + alpha * np.eye(len(K)), Y - ym)
    cv_mse = float(err[si, ai]) if len(names) >= 3 else float("nan")
    noise = cv_mse if np.isfinite(cv_mse) else float(Y.var())
    return RBFHead(Xs, dual, ym, x_mean, x_sd, alpha, ell2, noise, cv_mse, centred)


def select_head(X: np.ndarray, Y: np.ndarray, groups, kind: str = "cv",
                alphas=ALPHA_GRID) -> LinearHead | RBFHead:
    """The head of ``kind``: ``"ridge"``, ``"rbf"`` or ``"cv"`` (both, the lower
    leave-one-group-out error wins; ridge on ties or with < 3 groups)."""
    if kind not in HEADS:
        raise ValueError(f"head kind must be one of {HEADS}, got {kind!r}")
    ridge = fit_ridge_cv(X, Y, groups, alphas)
    linear = LinearHead(ridge, (X - ridge.x_mean) / ridge.x_sd,  # its standardised inputs
                        min(ridge.cv_error) if ridge.cv_error else float(Y.var()))
    if kind == "ridge" or (kind == "cv" and (len(np.unique(groups)) < 3 or len(alphas) == 1)):
        return linear
    rbf = fit_rbf_cv(X, Y, groups, alphas)
    if kind == "rbf" or rbf.cv_mse < linear.cv_mse:
        return rbf
    return linear


def held_out_predictions(head: LinearHead | RBFHead, X: np.ndarray, Y: np.ndarray,
                         groups) -> np.ndarray:
    """What ``head`` would predict for each training row had its group (perturbation) been
    held out: [n, d], the head refitted on the other groups with its chosen penalty (and
    length scale). These are the effects an unseen perturbation gets, for calibrating π on
    them; with < 3 groups there is nothing to hold out and the in-sample fit is returned."""
    groups = np.asarray(groups)
    names = np.unique(groups)
    if len(names) < 3:
        return head(X)
    out = np.empty_like(Y, dtype=np.float64)
    rbf = isinstance(head, RBFHead)
    Xs = head.train_x if head.train_x is not None else standardise(X)[0]
    K = _rbf(Xs, Xs, head.ell2) if rbf else None
    for name in names:
        held = groups == name
        if rbf:
            ym = _prior_mean(Y[~held], head.centred)
            Kt = K[np.ix_(~held, ~held)]
            dual = np.linalg.solve(Kt + head.alpha * np.eye(len(Kt)), Y[~held] - ym)
            out[held] = ym + K[np.ix_(held, ~held)] @ dual
        else:
            coef, icpt = ridge_path(Xs[~held], Y[~held], [head.alpha])
            out[held] = Xs[held] @ coef[0] + icpt[0]
    return out


def head_from_checkpoint(tensors: dict, prefix: str, meta: dict) -> LinearHead | RBFHead:
    """Inverse of a head's ``to_tensors`` + ``meta``."""
    if meta.get("kind", "ridge") == "rbf":
        parts = [tensors[f"{prefix}.{k}"].numpy() for k in RBFHead.PARTS]
        return RBFHead(*parts, meta["alpha"], meta["ell2"], meta["noise"], meta["cv_mse"],
                       meta.get("centred", True))
    train_x = tensors.get(f"{prefix}.train_x")
    return LinearHead(RidgeFit.from_tensors(tensors, prefix, meta["alpha"]),
                      None if train_x is None else train_x.numpy(), meta.get("noise"))
