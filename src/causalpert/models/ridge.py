"""Ridge regression with leave-one-group-out cross-validation of the penalty (closed form)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ridge penalties tried by cross-validation.
ALPHA_GRID = tuple(float(a) for a in np.logspace(-3, 3, 13))


def design_matrix(F: np.ndarray, doses: np.ndarray) -> np.ndarray:
    """Regression inputs [K, 2p + 1] = [γ, c, c·γ] from features [K, p] and doses [K]."""
    c = doses[:, None]
    return np.hstack([F, c, c * F])


def ridge_path(X: np.ndarray, Y: np.ndarray, alphas) -> tuple[np.ndarray, np.ndarray]:
    """Ridge fits with an unpenalised intercept for every α (one eigendecomposition).

    β_α = (X̃ᵀX̃ + αI)⁻¹ X̃ᵀỸ with X̃, Ỹ centred; intercept b = mean(Y) − mean(X) β_α.
    With more inputs than rows (q > n, e.g. 2,048 fingerprint bits) the same β_α comes from
    the thin SVD X̃ = U S Vᵀ as V diag(s / (s² + α)) UᵀỸ, in O(n² q) instead of O(q³).

    Args:
        X: inputs [n, q]. Y: targets [n, d]. alphas: A penalties.

    Returns:
        (coefficients [A, q, d], intercepts [A, d]).
    """
    xm, ym = X.mean(0), Y.mean(0)
    Xc, Yc = X - xm, Y - ym
    alphas = np.asarray(alphas, dtype=np.float64)
    if Xc.shape[1] > Xc.shape[0]:
        U, sv, Vt = np.linalg.svd(Xc, full_matrices=False)
        gain = sv[None, :, None] / (sv[None, :, None] ** 2 + alphas[:, None, None])
        coef = np.einsum("rq,ard->aqd", Vt, gain * (U.T @ Yc)[None])
        return coef, ym[None, :] - np.einsum("q,aqd->ad", xm, coef)
    evals, V = np.linalg.eigh(Xc.T @ Xc)
    proj = V.T @ (Xc.T @ Yc)  # [q, d]
    coef = np.einsum("qr,ard->aqd", V, proj[None] / (evals[None, :, None] + alphas[:, None, None]))
    return coef, ym[None, :] - np.einsum("q,aqd->ad", xm, coef)


@dataclass
class RidgeFit:
    """A standardised-input ridge model y = ((x − x_mean) / x_sd) β + b."""

    coef: np.ndarray
    intercept: np.ndarray
    x_mean: np.ndarray
    x_sd: np.ndarray
    alpha: float
    cv_error: list[float]

    PARTS = ("coef", "intercept", "x_mean", "x_sd")

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.x_mean) / self.x_sd) @ self.coef + self.intercept

    def to_tensors(self, prefix: str) -> dict:
        """The arrays as tensors named ``{prefix}.{part}`` (for a checkpoint; α goes to JSON)."""
        import torch

        return {f"{prefix}.{k}": torch.as_tensor(getattr(self, k)) for k in self.PARTS}

    @classmethod
    def from_tensors(cls, tensors: dict, prefix: str, alpha: float) -> RidgeFit:
        """Inverse of ``to_tensors`` (the CV errors are not kept)."""
        return cls(*(tensors[f"{prefix}.{k}"].numpy() for k in cls.PARTS), alpha, [])


def standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X − mean) / sd per column, with the mean and sd (a constant column keeps sd 1)."""
    x_mean, x_sd = X.mean(0), X.std(0)
    x_sd = np.where(x_sd > 1e-8, x_sd, 1.0)
    return (X - x_mean) / x_sd, x_mean, x_sd


def cv_alphas(alphas, feature_source: str) -> list[float]:
    """The α grid for ``fit_ridge_cv``. With one-hot features a held-out perturbation shares
    nothing with the others, so leave-one-perturbation-out CV cannot rank α (it picks one by
    noise, shrinking every fitted shift); then only the smallest α: each perturbation's own
    shift."""
    alphas = [float(a) for a in alphas]
    return [min(alphas)] if feature_source == "one-hot" else alphas


def fit_ridge_cv(X: np.ndarray, Y: np.ndarray, groups, alphas=ALPHA_GRID) -> RidgeFit:
    """Standardise X, choose α by leave-one-group-out CV (≥ 3 groups), refit on all rows.

    Args:
        X: inputs [n, q]. Y: targets [n, d]. groups: [n] group labels (all rows of a group
            are held out together, e.g. every dose of one perturbation).
    """
    Xs, x_mean, x_sd = standardise(X)
    groups = np.asarray(groups)
    names = np.unique(groups)
    alphas = [float(a) for a in alphas]
    if len(names) >= 3:
        err = np.zeros(len(alphas))
        for name in names:
            out = groups == name
            coef, icpt = ridge_path(Xs[~out], Y[~out], alphas)
            resid = Y[out][None] - (Xs[out] @ coef + icpt[:, None, :])
            err += (resid**2).sum(axis=(1, 2))
        cv = (err / Y.size).tolist()
        best = int(np.argmin(err))
    else:  # too few groups to cross-validate: the middle of the grid
        cv, best = [], len(alphas) // 2
    coef, icpt = ridge_path(Xs, Y, [alphas[best]])
    return RidgeFit(coef[0], icpt[0], x_mean, x_sd, alphas[best], cv)
