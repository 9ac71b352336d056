"""Shared pieces of the benchmark sections: the ``Config`` / ``Section`` records, logging,
formatting and timing helpers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from rich.console import Console

_err = Console(stderr=True, markup=False, highlight=False)


def log(msg: str) -> None:
    """Progress line on stderr (not part of the results)."""
    _err.print(msg)


@dataclass(frozen=True)
class Config:
    quick: bool = False


@dataclass
class Section:
    """What a benchmark section returns.

    results: JSON values (flat keys, prefixed by the section's topic).
    rows: (metric, value, context) lines for the printed table, ratios first.
    notes: sentences printed under the table and stored in the JSON (caveats, warnings).
    """

    results: dict[str, object] = field(default_factory=dict)
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# helpers


def fmt_s(t: float) -> str:
    if t >= 3600:
        return f"{t / 3600:.1f} h"
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.2f} ms"
    return f"{t * 1e6:.1f} µs"


def fmt_x(r: float) -> str:
    return f"{r:,.0f}×" if r >= 100 else f"{r:.1f}×"


def best_of(fn: Callable[[], object], reps: int) -> tuple[float, object]:
    """Min wall time over ``reps`` calls (after the caller's warm-up) and the last return value."""
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def papalexi_modelled():
    """Papalexi 2021 on its modelled genes (``papalexi_genes``), log-normalised, all cells:
    (adata, dense x, perturbation per cell, control mean, control sd)."""
    from causalpert.data.prepare import dense_matrix
    from causalpert.data.screens import papalexi2021, papalexi_genes

    adata = papalexi2021()
    adata = adata[:, papalexi_genes(adata)]
    x = dense_matrix(adata)
    pert = adata.obs["perturbation"].astype(str).to_numpy()
    ctrl = x[pert == "control"]
    return adata, x, pert, ctrl.mean(0), ctrl.std(0)
