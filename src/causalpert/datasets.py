"""Public namespace ``causalpert.datasets``: bundled and simulated data sets."""

from .data.datasets import SACHS_CONSENSUS_EDGES, SACHS_INTENDED_TARGETS, sachs
from .data.simulate import simulate

__all__ = ["SACHS_CONSENSUS_EDGES", "SACHS_INTENDED_TARGETS", "sachs", "simulate"]
