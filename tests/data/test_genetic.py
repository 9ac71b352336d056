"""Intended targets and combination names (``data.genetic``)."""

import anndata as ad
import numpy as np
import pytest

from causalpert.data.genetic import combination_parts, parse_genes, resolve_intended_targets


def test_parse_genes_accepts_strings_lists_and_empty():
    assert parse_genes("STAT1") == ("STAT1",)
    assert parse_genes("KLF1+MAP2K6") == ("KLF1", "MAP2K6")
    assert parse_genes(["A", "B+C"]) == ("A", "B", "C")
    assert parse_genes("") == () and parse_genes(None) == ()
    with pytest.raises(ValueError, match="gene names"):
        parse_genes([1, 2])


def test_resolve_prefers_given_over_uns_and_unions_combinations():
    adata = ad.AnnData(np.zeros((2, 2)))
    adata.uns["intended_targets"] = {"A": "a", "B": "b", "control": ""}
    got = resolve_intended_targets(adata, None, ["A", "B", "A+B"])
    assert got == {"A": ("a",), "B": ("b",), "A+B": ("a", "b")}
    assert resolve_intended_targets(adata, {}, ["A"]) == {}
    assert resolve_intended_targets(adata, {"A": ["x"]}, ["A"]) == {"A": ("x",)}
    with pytest.raises(ValueError, match="dict"):
        resolve_intended_targets(adata, ["A"], ["A"])


def test_combination_parts_splits_only_unknown_names_of_known_parts():
    known = {"A", "B", "A+C"}
    assert combination_parts("A+B", known) == ["A", "B"]
    assert combination_parts("A+C", known) is None  # itself a known perturbation
    assert combination_parts("A+D", known) is None  # D unknown
    assert combination_parts("A", known) is None
