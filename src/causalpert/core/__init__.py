"""The causal core: pure tensors, no AnnData or pandas.

Stationary-diffusion drifts, interventions, the KDS loss, dose response and samplers.
"""

from .dose import hill
from .drift import DRIFTS, Drift, LinearDrift, MLPDrift
from .interventions import Interventions, intervened_drift
from .kds import (
    ESTIMATORS,
    kds,
    kds_autodiff,
    kds_bernoulli,
    kds_shift_gain,
    stein_kernel_autodiff,
)
from .linalg import (
    LeadingEigenvalue,
    LyapunovSolver,
    UnstableDriftError,
    check_stable,
    leading_eigenvalues,
    max_real_eigenvalue,
    solve_lyapunov,
)
from .sampling import (
    SimulationDivergedError,
    euler_maruyama,
    match_stationary_variance,
    sample_gaussian,
    sample_stationary,
    stationary_gaussian,
    transport_cells,
)

__all__ = [
    "DRIFTS",
    "ESTIMATORS",
    "Drift",
    "Interventions",
    "LeadingEigenvalue",
    "LinearDrift",
    "LyapunovSolver",
    "MLPDrift",
    "SimulationDivergedError",
    "UnstableDriftError",
    "check_stable",
    "euler_maruyama",
    "hill",
    "intervened_drift",
    "kds",
    "kds_autodiff",
    "kds_bernoulli",
    "kds_shift_gain",
    "leading_eigenvalues",
    "match_stationary_variance",
    "max_real_eigenvalue",
    "sample_gaussian",
    "sample_stationary",
    "solve_lyapunov",
    "stationary_gaussian",
    "stein_kernel_autodiff",
    "transport_cells",
]
