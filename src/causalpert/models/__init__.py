"""Models: the causal fit with known targets (and, later, GIM and baselines)."""

from .causal import CausalFit, fit_causal
from .config import FitConfig
from .training import FitDivergedError, History

__all__ = ["CausalFit", "FitConfig", "FitDivergedError", "History", "fit_causal"]
