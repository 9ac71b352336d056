"""``Contexts``: cells grouped by context (control + one perturbation at one dose), as tensors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .backed import BackedRows


def float32_rows(x, rows=None, *, chunk: int = 4096) -> np.ndarray:
    """Rows ``rows`` of ``x`` (all rows if None) as one dense float32 array [len(rows), d].

    ``x`` may be dense or sparse (CSR), float or integer; it is converted in blocks of ``chunk``
    rows, so only the float32 result is ever allocated at full size.
    """
    if not sp.issparse(x):
        x = np.asarray(x)
        if rows is None and x.dtype == np.float32:
            return x
    rows = np.arange(x.shape[0]) if rows is None else np.asarray(rows)
    out = np.empty((len(rows), x.shape[1]), dtype=np.float32)
    for i in range(0, len(rows), chunk):
        block = x[rows[i : i + chunk]]
        out[i : i + chunk] = block.toarray() if sp.issparse(block) else block
    return out


#: rows per block of the whole-matrix passes below (a few MB of temporaries, not N × d)
ROW_BLOCK = 65536


def _all_finite(x: torch.Tensor) -> bool:
    """``torch.isfinite(x).all()`` in row blocks (no N × d boolean temporary); numpy's
    isfinite on CPU (≈ 10× torch's on one thread at N = 10⁵, d = 1,000)."""
    check = ((lambda b: bool(np.isfinite(b.detach().numpy()).all())) if x.device.type == "cpu"
             else (lambda b: bool(torch.isfinite(b).all())))
    return all(check(x[i : i + ROW_BLOCK]) for i in range(0, x.shape[0], ROW_BLOCK))


@dataclass(frozen=True)
class Contexts:
    """Cells of K contexts, stored contiguously by context, plus per-context metadata.

    Attributes:
        x: cells [N, d] (float32), rows of context k are ``x[offsets[k]:offsets[k+1]]``; a
            tensor, or ``BackedRows`` read from disk on demand (large data).
        offsets: [K + 1] int64 row offsets, offsets[0] = 0, offsets[-1] = N.
        perturbations: perturbation name of each context (length K).
        doses: dose of each context [K].
        genes: gene names (length d).
        control: index of the control (observational) context.
        features: perturbation features of each context [K, p] (control row: zeros), or None.
    """

    x: torch.Tensor | BackedRows
    offsets: torch.Tensor
    perturbations: tuple[str, ...]
    doses: torch.Tensor
    genes: tuple[str, ...]
    control: int = 0
    features: torch.Tensor | None = None

    def __post_init__(self):
        K = len(self.perturbations)
        if self.x.dim() != 2:
            raise ValueError(f"cells must be a [N, d] matrix, got shape {tuple(self.x.shape)}")
        if len(self.genes) != self.x.shape[1]:
            raise ValueError(f"{len(self.genes)} gene names for {self.x.shape[1]} columns")
        if self.offsets.shape != (K + 1,) or self.doses.shape != (K,):
            raise ValueError(f"offsets must be [K+1] and doses [K] for K={K} contexts")
        if self.offsets[0] != 0 or self.offsets[-1] != self.x.shape[0]:
            raise ValueError("offsets must start at 0 and end at the number of cells")
        if (self.sizes < 2).any():
            k = int(torch.argmin(self.sizes))
            raise ValueError(
                f"context {self.perturbations[k]!r} (dose {float(self.doses[k]):g}) has "
                f"{int(self.sizes[k])} cell(s); every context needs at least 2 cells"
            )
        if isinstance(self.x, torch.Tensor) and not _all_finite(self.x):
            raise ValueError("cells contain NaN or inf; remove or impute them before fitting")
        if self.features is not None and (self.features.dim() != 2 or len(self.features) != K):
            raise ValueError(f"features must be [K={K}, p], got {tuple(self.features.shape)}")
        if not 0 <= self.control < K:
            raise ValueError(f"control index {self.control} out of range for {K} contexts")

    @classmethod
    def from_arrays(
        cls,
        x,
        perturbation,
        dose,
        *,
        control: str = "control",
        genes=None,
    ) -> Contexts:
        """Group cells by (perturbation, dose); the control context comes first.

        Args:
            x: cells [N, d], dense or sparse, float or integer (densified once, to float32),
                or ``BackedRows`` (kept on disk).
            perturbation: [N] names. dose: [N] doses (ignored for control).
            control: the perturbation name of control cells.
            genes: d gene names (default g0, g1, ...).
        """
        if not isinstance(x, BackedRows):
            x = x.tocsr() if sp.issparse(x) else np.asarray(x)
        pert = np.asarray(perturbation).astype(str)
        dose = np.asarray(dose, dtype=np.float64)
        if x.ndim != 2 or pert.shape != (x.shape[0],) or dose.shape != (x.shape[0],):
            raise ValueError(
                f"x must be [N, d] with N perturbation labels and doses; got x {x.shape}, "
                f"perturbation {pert.shape}, dose {dose.shape}"
            )
        is_ctrl = pert == control
        if not is_ctrl.any():
            raise ValueError(f"no control cells: no cell has perturbation == {control!r}")
        dose = np.where(is_ctrl, 0.0, dose)
        keys = sorted({(p, d) for p, d in zip(pert[~is_ctrl], dose[~is_ctrl], strict=True)})
        keys = [(control, 0.0), *keys]
        index = {k: i for i, k in enumerate(keys)}
        ctx = np.array([index[(p, d)] for p, d in zip(pert, dose, strict=True)])
        order = np.argsort(ctx, kind="stable")
        sizes = np.bincount(ctx, minlength=len(keys))
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        genes = tuple(str(g) for g in genes) if genes is not None else tuple(
            f"g{j}" for j in range(x.shape[1])
        )
        return cls(
            x=x.reorder(order) if isinstance(x, BackedRows)
            else torch.from_numpy(float32_rows(x, order)),
            offsets=torch.from_numpy(offsets.astype(np.int64)),
            perturbations=tuple(k[0] for k in keys),
            doses=torch.tensor([k[1] for k in keys], dtype=torch.float32),
            genes=genes,
            control=0,
        )

    def with_features(self, features: torch.Tensor) -> Contexts:
        """A copy carrying per-context features [K, p]."""
        return dataclasses.replace(self, features=features)

    def subset(self, keep) -> Contexts:
        """The contexts ``keep`` (indices; must include the control), re-indexed in that order."""
        keep = [int(k) for k in keep]
        if self.control not in keep:
            raise ValueError("a subset of contexts must keep the control context")
        sizes = self.sizes[keep]
        if isinstance(self.x, BackedRows):
            bounds = [(int(self.offsets[k]), int(self.offsets[k + 1])) for k in keep]
            x = self.x.reorder(np.concatenate([np.arange(a, b) for a, b in bounds]))
        else:
            x = torch.cat([self.cells(k) for k in keep])
        return Contexts(
            x=x,
            offsets=torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)]),
            perturbations=tuple(self.perturbations[k] for k in keep),
            doses=self.doses[keep],
            genes=self.genes,
            control=keep.index(self.control),
            features=None if self.features is None else self.features[keep],
        )

    @property
    def n_contexts(self) -> int:
        return len(self.perturbations)

    @property
    def n_genes(self) -> int:
        return self.x.shape[1]

    @property
    def sizes(self) -> torch.Tensor:
        """Cells per context [K]."""
        return self.offsets[1:] - self.offsets[:-1]

    def cells(self, k: int) -> torch.Tensor:
        """Cells of context k [n_k, d]."""
        return self.x[self.offsets[k] : self.offsets[k + 1]]

    def means(self) -> torch.Tensor:
        """Per-context mean [K, d] (one streamed pass over the file for ``BackedRows``)."""
        ctx = torch.repeat_interleave(torch.arange(self.n_contexts), self.sizes)
        if isinstance(self.x, BackedRows):
            sums, bad = self.x.group_sums(ctx.numpy(), self.n_contexts)
            if bad:
                raise ValueError(f"{bad} cells have NaN or inf values: remove or impute them "
                                 "first")
        else:
            sums = torch.zeros(self.n_contexts, self.n_genes, dtype=torch.float64)
            for i in range(0, len(self.x), ROW_BLOCK):  # float64 in blocks, not a copy of X
                sums.index_add_(0, ctx[i : i + ROW_BLOCK], self.x[i : i + ROW_BLOCK].double())
        return (sums / self.sizes[:, None]).float()

    def standardised(self, shift: torch.Tensor, scale: torch.Tensor, *,
                     inplace: bool = False) -> Contexts:
        """The contexts in coordinates (x − shift) / scale: no copy for ``BackedRows``; else
        one new N × d tensor filled in row blocks, or, with ``inplace=True`` (for a caller that
        owns these contexts, e.g. a model fitting on what ``prepare`` made for it), none."""
        if isinstance(self.x, BackedRows):
            return dataclasses.replace(self, x=self.x.affine(shift, scale))
        x = self.x if inplace else torch.empty_like(self.x)
        for i in range(0, len(x), ROW_BLOCK):
            torch.sub(self.x[i : i + ROW_BLOCK], shift, out=x[i : i + ROW_BLOCK])
            x[i : i + ROW_BLOCK].div_(scale)
        return dataclasses.replace(self, x=x)

    def within_sd(self) -> torch.Tensor:
        """Pooled within-context standard deviation [d]: √(Σ_k Σ_{i∈k} (x_i − x̄_k)² / (N − K))
        (the spread of a gene where it is expressed, also when it is silent in control)."""
        means = self.means().double()
        if isinstance(self.x, BackedRows):
            raise ValueError("within_sd needs cells in memory")
        ss = torch.zeros(self.n_genes, dtype=torch.float64)
        ctx = torch.repeat_interleave(torch.arange(self.n_contexts), self.sizes)
        for i in range(0, len(self.x), ROW_BLOCK):
            ss += ((self.x[i : i + ROW_BLOCK].double() - means[ctx[i : i + ROW_BLOCK]]) ** 2
                   ).sum(0)
        dof = max(int(self.sizes.sum()) - self.n_contexts, 1)
        return (ss / dof).sqrt().float()

    def control_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Control mean μ₀ [d] and standard deviation s₀ [d] (floored at 1e-6), in float64
        accumulation, returned as float32."""
        cells = self.cells(self.control).double()
        return cells.mean(0).float(), cells.std(0).clamp_min(1e-6).float()

    def sample(
        self, contexts: torch.Tensor, n_cells: int, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """n_cells drawn from each given context: [B, n_cells, d].

        Without replacement (distinct cells, so U-statistics stay unbiased) when every chosen
        context has at most ``exact_limit`` = 4096 cells; with replacement above that, where
        repeats are rare. A context smaller than n_cells repeats cells. Memory is
        O(B · min(max size, 4096) + B · n_cells · d), never the whole data.
        """
        sizes = self.sizes[contexts]
        max_size = int(sizes.max())
        B = len(contexts)
        if max_size <= 4096:
            keys = torch.rand(B, max_size, generator=generator)
            keys[torch.arange(max_size)[None, :] >= sizes[:, None]] = 2.0
            pick = keys.argsort(dim=1)[:, :n_cells] if n_cells <= max_size else None
            if pick is None:
                pick = torch.arange(n_cells)[None, :].expand(B, -1)
            pick = pick % sizes[:, None]
        else:
            u = torch.rand(B, n_cells, generator=generator, dtype=torch.float64)
            pick = (u * sizes[:, None]).long()
        return self.x[self.offsets[contexts][:, None] + pick]
