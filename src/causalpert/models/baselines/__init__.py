"""Baselines (method.md §6): the yardstick every causal model is compared against.

Importing this package registers each baseline in ``causalpert.models.MODELS``:

- ``control`` (:class:`ControlBaseline`): the control cells, whatever the perturbation.
- ``additive`` (:class:`AdditiveBaseline`): ridge regression (γ, c) → mean shift Δμ.
- ``mlp`` (:class:`MLPBaseline`): MLP (γ, c) → (Δμ, log-scale s), energy-distance loss.
- ``de`` (:class:`DEBaseline`): differential-expression target ranking (no cells).
- ``free-causal`` (:class:`FreeCausalBaseline`): causal model + free L1 shifts per context.
- ``oracle`` (:class:`OracleBaseline`): the simulated truth (synthetic data only).
- ``mean-shift`` (:class:`MeanShiftBaseline`): control + the average training shift, for any
  perturbation (the ``mean-ko`` yardstick of an unseen knockout).

Combinations ``"A+B"``: the oracle composes the true interventions; the others add the parts'
mean shifts (``PerturbationModel._compose_additively``; ``additive`` is the field's baseline).
"""

from .additive import AdditiveBaseline
from .control import ControlBaseline
from .de import DEBaseline
from .free_causal import FreeCausalBaseline
from .mean_shift import MeanShiftBaseline
from .mlp import MLPBaseline
from .oracle import OracleBaseline

__all__ = [
    "AdditiveBaseline",
    "ControlBaseline",
    "DEBaseline",
    "FreeCausalBaseline",
    "MLPBaseline",
    "MeanShiftBaseline",
    "OracleBaseline",
]
