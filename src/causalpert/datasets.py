"""Public namespace ``causalpert.datasets``: bundled, user-supplied and simulated data sets."""

from .data.datasets import SACHS_CONSENSUS_EDGES, SACHS_INTENDED_TARGETS, sachs
from .data.sciplex3 import read_sciplex3
from .data.screens import norman2019, papalexi2021, papalexi_genes
from .data.simulate import simulate

__all__ = [
    "SACHS_CONSENSUS_EDGES",
    "SACHS_INTENDED_TARGETS",
    "norman2019",
    "papalexi2021",
    "papalexi_genes",
    "read_sciplex3",
    "sachs",
    "simulate",
]
