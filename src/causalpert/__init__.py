"""causalpert: causal models of cells learned jointly with generative intervention models.

Public API (AnnData in, AnnData/DataFrame out)::

    import causalpert as cp
    adata = cp.simulate("paper-synthetic", sim="linear", seed=0)
    model = cp.GIM(causal="linear", seed=0).fit(adata[adata.obs["split"] == "train"])
    model.predict(["pert_45"], doses=[1.0], n_cells=500)

Names load lazily, so ``import causalpert.core`` or ``causalpert.metrics`` pulls in neither
AnnData nor pandas.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name → module that defines it
_EXPORTS = {
    "CausalFit": "causalpert.models",
    "Contexts": "causalpert.data",
    "Ensemble": "causalpert.models",
    "FitConfig": "causalpert.models",
    "GIM": "causalpert.models",
    "MODELS": "causalpert.models",
    "PerturbationModel": "causalpert.models",
    "SyntheticDesign": "causalpert.data",
    "fit_causal": "causalpert.models",
    "simulate": "causalpert.data",
}
_SUBMODULES = ("core", "data", "datasets", "metrics", "models", "benchmark", "design", "pp",
               "pl")
_ALIASES = {"pl": "plotting"}

__all__ = ["__version__", *sorted(_EXPORTS), *_SUBMODULES]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"causalpert.{_ALIASES.get(name, name)}")
    else:
        raise AttributeError(f"module 'causalpert' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__
