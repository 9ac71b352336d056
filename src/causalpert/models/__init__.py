"""Models: GIM and the baselines behind one interface (``PerturbationModel``), the known-target
causal fit, training configuration and checkpoints."""

from .base import NotFittedError, PerturbationModel
from .causal import CausalFit, fit_causal
from .checkpoint import CheckpointError
from .config import FitConfig
from .training import FitDivergedError, History

#: name → model class; every entry implements fit / predict (+ target_probabilities, graph).
MODELS: dict[str, type[PerturbationModel]] = {}


def register(cls: type[PerturbationModel]) -> type[PerturbationModel]:
    """Class decorator adding a model to ``MODELS`` under ``cls.name``."""
    MODELS[cls.name] = cls
    return cls


__all__ = [
    "MODELS",
    "CausalFit",
    "CheckpointError",
    "FitConfig",
    "FitDivergedError",
    "History",
    "NotFittedError",
    "PerturbationModel",
    "fit_causal",
    "register",
]

# registration needs MODELS and register above
from . import baselines  # noqa: E402
from .ensemble import Ensemble  # noqa: E402
from .gim import GIM  # noqa: E402
from .peer import PeerModel  # noqa: E402

__all__ += ["GIM", "Ensemble", "PeerModel", "baselines"]
