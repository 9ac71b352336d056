"""Public namespace ``causalpert.datasets``: bundled, user-supplied and simulated data sets."""

from .data.datasets import SACHS_CONSENSUS_EDGES, SACHS_INTENDED_TARGETS, sachs
from .data.sciplex3 import read_sciplex3
from .data.simulate import simulate

__all__ = ["SACHS_CONSENSUS_EDGES", "SACHS_INTENDED_TARGETS", "read_sciplex3", "sachs", "simulate"]
