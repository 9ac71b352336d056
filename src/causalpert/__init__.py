"""causalpert: causal models of cells learned jointly with generative intervention models.

Public API (AnnData in, AnnData/DataFrame out)::

    import causalpert as cp
    adata = cp.simulate("paper-synthetic", sim="linear", seed=0)
"""

from . import core, datasets, metrics
from .data import Contexts, SyntheticDesign, simulate
from .models import GIM, MODELS, CausalFit, FitConfig, PerturbationModel, fit_causal

__version__ = "0.1.0"

__all__ = [
    "GIM",
    "MODELS",
    "CausalFit",
    "Contexts",
    "FitConfig",
    "PerturbationModel",
    "SyntheticDesign",
    "__version__",
    "core",
    "datasets",
    "fit_causal",
    "metrics",
    "simulate",
]
