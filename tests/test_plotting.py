"""cp.pl: each plot returns Axes whose artists carry the numbers it was given."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

import causalpert as cp


def test_target_heatmap_boxes_intended_targets():
    probs = pd.DataFrame(np.random.default_rng(0).random((3, 4)), index=["a", "b", "c"],
                         columns=["g0", "g1", "g2", "g3"])
    ax = cp.pl.target_heatmap(probs, intended={"a": "g1", "c": "g3"})
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == 2 and boxes[0].get_xy() == (0.5, -0.5)
    assert ax.images[0].get_array().shape == (3, 4)
    with pytest.raises(ValueError, match="intended target 'g9'"):
        cp.pl.target_heatmap(probs, intended={"a": "g9"})
    with pytest.raises(ValueError, match="empty"):
        cp.pl.target_heatmap(probs.iloc[:0])


def test_network_draws_kept_edges_and_marks_misses():
    genes = ["a", "b", "c", "d"]
    G = pd.DataFrame(0.0, index=genes, columns=genes)
    G.loc["a", "b"], G.loc["b", "c"], G.loc["c", "a"] = 1.0, 0.5, 0.1
    ref = np.zeros((4, 4), bool)
    ref[0, 1] = ref[2, 3] = True
    ax = cp.pl.network(G, reference=ref)  # keeps the 2 strongest (size of the reference)
    arrows = [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None]
    colours = sorted(a.arrow_patch.get_edgecolor()[:3] for a in arrows)
    assert len(arrows) == 3  # a→b (hit), b→c (false), c→d (missed, dashed)
    assert len(set(colours)) == 3
    assert len([a for a in cp.pl.network(G, threshold=0.2).texts
                if getattr(a, "arrow_patch", None) is not None]) == 2


def test_benchmark_bars_heights_are_the_means():
    summary = pd.DataFrame({"method": ["x", "y"], "split": "id", "metric": "edist_rel",
                            "mean": [0.2, 0.1], "sd": [0.01, 0.02], "n_seeds": 3,
                            "protocol": "p"})
    ax = cp.pl.benchmark_bars(summary)
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == [0.1, 0.2]
    with pytest.raises(ValueError, match="no rows for metric 'mmd'"):
        cp.pl.benchmark_bars(summary, metric="mmd")


def test_distributions_one_violin_pair_per_gene():
    adata = cp.datasets.sachs()
    ctrl = adata[adata.obs["perturbation"] == "cd3cd28"]
    obs = adata[adata.obs["perturbation"] == "cd3cd28+u0126"]
    ax = cp.pl.distributions(obs, obs, control=ctrl, genes=["pmek", "PIP2", "PKA"])
    assert len([c for c in ax.collections if "PolyCollection" in type(c).__name__]) == 6
    assert [t.get_text() for t in ax.get_xticklabels()] == ["pmek", "PIP2", "PKA"]
    with pytest.raises(ValueError, match="unknown gene"):
        cp.pl.distributions(obs, obs, genes=["nope"])
