"""AnnData ↔ tensors: contexts, bundled datasets and seeded simulations."""

from .contexts import Contexts
from .datasets import sachs
from .simulate import PROTOCOLS, SyntheticDesign, simulate

__all__ = ["PROTOCOLS", "Contexts", "SyntheticDesign", "sachs", "simulate"]
