"""``ridge_path`` with more inputs than rows (fingerprints): the SVD route equals the solve."""

import numpy as np

from causalpert.models.ridge import ridge_path


def test_wide_ridge_path_matches_direct_solve():
    rng = np.random.default_rng(1)
    X, Y = rng.integers(0, 2, size=(12, 300)).astype(float), rng.normal(size=(12, 4))
    X[:, :50] = 0.0  # constant columns (bits no training molecule sets) get coefficient 0
    coef, icpt = ridge_path(X, Y, [0.01, 1.0, 100.0])
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    for a, alpha in enumerate([0.01, 1.0, 100.0]):
        beta = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(300), Xc.T @ Yc)
        np.testing.assert_allclose(coef[a], beta, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(icpt[a], Y.mean(0) - X.mean(0) @ beta, atol=1e-10)
    assert np.abs(coef[:, :50]).max() < 1e-12
