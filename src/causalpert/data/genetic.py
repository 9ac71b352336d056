"""Genetic perturbations and combinations: which genes a perturbation is aimed at, and how a
name such as ``"KLF1+MAP2K6"`` splits into its parts (method.md §7).

Intended targets come as a dict perturbation → genes: a list of gene names, or one string with
genes joined by ``+`` (``""``: none), the h5ad-friendly form of ``uns["intended_targets"]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import anndata as ad

#: separator of the parts of a combination (``"A+B"``) and of genes in a target string
COMBO_SEP = "+"


def parse_genes(value) -> tuple[str, ...]:
    """Genes of one intended-target entry: ``"A+B"`` / ``["A", "B"]`` → ``("A", "B")``;
    ``""`` or None → ``()``."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(g for g in value.split(COMBO_SEP) if g)
    if isinstance(value, Iterable):
        out = []
        for v in value:
            if not isinstance(v, str):
                raise ValueError(f"intended targets must be gene names (str), got {v!r}")
            out += [g for g in v.split(COMBO_SEP) if g]
        return tuple(out)
    raise ValueError(f"intended targets must be a gene name, 'A+B' or a list of names, got "
                     f"{value!r}")


def resolve_intended_targets(adata: ad.AnnData | None, given: Mapping | None,
                             perturbations: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The intended-target map of a fit: ``given`` wins (``{}`` switches them off), else
    ``adata.uns["intended_targets"]`` if present, else none.

    Returns every non-empty entry (also for perturbations not among ``perturbations``, e.g.
    held-out knockouts to be predicted later); a combination of known parts without its own
    entry gets the union of its parts' targets.
    """
    if given is None:
        given = {} if adata is None else adata.uns.get("intended_targets", {})
    if not isinstance(given, Mapping):
        raise ValueError("intended_targets must be a dict {perturbation: [genes]} (or 'A+B')")
    out = {str(k): parse_genes(v) for k, v in given.items()}
    out = {k: v for k, v in out.items() if v}
    for p in perturbations:
        parts = p.split(COMBO_SEP)
        if p not in out and len(parts) > 1 and all(q in out for q in parts):
            out[p] = tuple(dict.fromkeys(g for q in parts for g in out[q]))
    return out


def combination_parts(name: str, known) -> list[str] | None:
    """The parts of a combination name ``"A+B"`` whose parts are all ``known`` (a container
    of names or a predicate), else None. A name that is itself known is not split."""
    is_known = known if callable(known) else known.__contains__
    if is_known(name) or COMBO_SEP not in name:
        return None
    parts = [q for q in name.split(COMBO_SEP) if q]
    if len(parts) < 2 or not all(is_known(q) for q in parts):
        return None
    return parts
