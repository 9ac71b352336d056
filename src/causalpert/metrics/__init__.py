"""Evaluation metrics: distribution, mean, target-recovery and graph-recovery scores, and
calibration (reliability, ECE, temperature).

Depends only on numpy, scipy and POT (imported lazily by `sinkhorn`). Every metric takes
array-likes and returns a Python float. `METRICS` maps metric names to `Metric` records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
)
from .distributions import (
    MMD_BANDWIDTH_SCALES,
    MMD_MEDIAN_MAX_CELLS,
    SINKHORN_EPSILON,
    SINKHORN_MAX_ITER,
    edist,
    edist_rel,
    edist_sq,
    mmd,
    sinkhorn,
)
from .graphs import graph_auprc, shd
from .means import delta_pearson, mean_rmse
from .targets import target_auprc, target_auroc, target_rank

MetricKind = Literal["distribution", "mean", "target", "graph"]
_KINDS = ("distribution", "mean", "target", "graph")


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes:
        name: Registry key, equal to the function name.
        fn: The metric function (array-likes in, float out).
        higher_is_better: Direction of improvement.
        kind: One of "distribution", "mean", "target", "graph".
    """

    name: str
    fn: Callable[..., float]
    higher_is_better: bool
    kind: MetricKind

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Metric kind must be one of {_KINDS}, got {self.kind!r}")


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("edist", edist, False, "distribution"),
        Metric("edist_sq", edist_sq, False, "distribution"),
        Metric("mmd", mmd, False, "distribution"),
        Metric("sinkhorn", sinkhorn, False, "distribution"),
        Metric("edist_rel", edist_rel, False, "distribution"),
        Metric("mean_rmse", mean_rmse, False, "mean"),
        Metric("delta_pearson", delta_pearson, True, "mean"),
        Metric("target_auroc", target_auroc, True, "target"),
        Metric("target_auprc", target_auprc, True, "target"),
        Metric("target_rank", target_rank, False, "target"),
        Metric("graph_auprc", graph_auprc, True, "graph"),
        Metric("shd", shd, False, "graph"),
    )
}

__all__ = [
    "METRICS",
    "MMD_BANDWIDTH_SCALES",
    "MMD_MEDIAN_MAX_CELLS",
    "SINKHORN_EPSILON",
    "SINKHORN_MAX_ITER",
    "Metric",
    "MetricKind",
    "apply_temperature",
    "delta_pearson",
    "edist",
    "edist_rel",
    "edist_sq",
    "expected_calibration_error",
    "fit_temperature",
    "graph_auprc",
    "mean_rmse",
    "mmd",
    "reliability_curve",
    "shd",
    "sinkhorn",
    "target_auprc",
    "target_auroc",
    "target_rank",
]
