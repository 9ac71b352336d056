"""``FitConfig``: every training knob in one place (each knob has exactly one home)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class FitConfig:
    """Training settings for the causal model (and, later, the GIM).

    Attributes:
        steps: Adam steps.
        lr: Adam learning rate.
        batch_contexts: perturbed contexts per step (the control context is added every step).
        cells_per_context: cells drawn per perturbed context per step.
        control_cells: cells drawn from the control context per step.
        control_weight: w₀, weight of the control KDS relative to the mean over the batch.
        bandwidth: RBF bandwidth h, or ``"median"``: median pairwise distance of control cells.
        estimator: KDS estimator, ``"u"`` (default), ``"v"`` or ``"linear"``.
        lambda_graph: λ_G, weight of the group-lasso sparsity on the graph.
        hidden: hidden units per mechanism (MLP drift).
        activation: MLP drift activation.
        learn_scales: learn per-context log noise-scale changes ℓ on targets.
        warm_start: start shifts at the mean differences and b, σ at the control moments.
        log_every: record the loss history every this many steps.
    """

    steps: int = 3000
    lr: float = 0.01
    batch_contexts: int = 16
    cells_per_context: int = 48
    control_cells: int = 256
    control_weight: float = 1.0
    bandwidth: float | str = "median"
    estimator: str = "u"
    lambda_graph: float = 0.005
    hidden: int = 8
    activation: str = "tanh"
    learn_scales: bool = False
    warm_start: bool = True
    log_every: int = 50

    def __post_init__(self):
        if self.estimator not in ("u", "v", "linear"):
            raise ValueError(f"estimator must be 'u', 'v' or 'linear', got {self.estimator!r}")
        if isinstance(self.bandwidth, str) and self.bandwidth != "median":
            raise ValueError(f"bandwidth must be a positive number or 'median', got "
                             f"{self.bandwidth!r}")
        for name in ("steps", "batch_contexts", "cells_per_context", "control_cells"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FitConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown FitConfig keys {sorted(unknown)}")
        return cls(**d)

    def replace(self, **changes) -> FitConfig:
        return FitConfig(**{**self.to_dict(), **changes})
