"""cp.pl: each plot returns Axes whose artists carry the numbers it was given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

import causalpert as cp


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _arrows(ax):
    return [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None]


def test_target_heatmap_boxes_intended_targets():
    probs = pd.DataFrame(np.random.default_rng(0).random((3, 4)), index=["a", "b", "c"],
                         columns=["g0", "g1", "g2", "g3"])
    # "b" has no target, "z" is not a row: neither is boxed
    ax = cp.pl.target_heatmap(probs, intended={"a": "g1", "b": "", "c": "g3", "z": "g0"})
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert sorted(b.get_xy() for b in boxes) == [(0.5, -0.5), (2.5, 1.5)]
    assert ax.images[0].get_array().shape == (3, 4)
    np.testing.assert_allclose(ax.images[0].get_array(), probs.to_numpy())
    assert len(ax.texts) == 12  # one printed value per cell
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="intended target 'g9'"):
        cp.pl.target_heatmap(probs, intended={"a": "g9"})
    with pytest.raises(ValueError, match="empty"):
        cp.pl.target_heatmap(probs.iloc[:0])


def test_target_heatmap_draws_on_given_axes():
    _, ax = plt.subplots()
    probs = pd.DataFrame([[0.9, 0.1]], index=["p"], columns=["x", "y"])
    assert cp.pl.target_heatmap(probs, ax=ax) is ax
    assert not [p for p in ax.patches if isinstance(p, Rectangle)]


def test_network_draws_kept_edges_and_marks_misses():
    genes = ["a", "b", "c", "d"]
    G = pd.DataFrame(0.0, index=genes, columns=genes)
    G.loc["a", "b"], G.loc["b", "c"], G.loc["c", "a"] = 1.0, -0.5, 0.1
    ref = np.zeros((4, 4), bool)
    ref[0, 1] = ref[2, 3] = True
    ax = cp.pl.network(G, reference=ref)  # keeps the 2 strongest |w| (size of the reference)
    arrows = _arrows(ax)
    assert len(arrows) == 3  # a→b (hit), b→c (false), c→d (missed, dashed)
    colours = {a.arrow_patch.get_edgecolor()[:3] for a in arrows}
    assert len(colours) == 3
    dashed = [a for a in arrows if a.arrow_patch.get_linestyle() not in ("-", "solid")]
    assert len(dashed) == 1
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["in reference (1)", "not in reference (1)", "missed (1)"]
    # without a reference: the number of arrows is the number of edges kept
    assert len(_arrows(cp.pl.network(G, threshold=0.2))) == 2
    assert len(_arrows(cp.pl.network(G, top_k=1))) == 1
    assert len(_arrows(cp.pl.network(G))) == 3  # only non-zero edges are drawn
    with pytest.raises(ValueError, match="not both"):
        cp.pl.network(G, top_k=2, threshold=0.1)
    with pytest.raises(ValueError, match="reference has shape"):
        cp.pl.network(G, reference=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="square"):
        cp.pl.network(G.iloc[:3])


def test_network_on_sachs_consensus():
    adata = cp.datasets.sachs()
    truth = pd.DataFrame(adata.uns["consensus_graph"].astype(float),
                         index=adata.var_names, columns=adata.var_names)
    ax = cp.pl.network(truth, reference=adata.uns["consensus_graph"])
    arrows = _arrows(ax)
    assert len(arrows) == 17
    assert {a.arrow_patch.get_edgecolor()[:3] for a in arrows} == {
        matplotlib.colors.to_rgb(cp.pl.HIT)}


def test_benchmark_bars_heights_are_the_means():
    summary = pd.DataFrame({"protocol": "p", "method": ["x", "gim", "z"], "split": "id",
                            "metric": "edist_rel", "mean": [0.2, 0.1, 0.3],
                            "sd": [0.01, 0.02, 0.0], "n_seeds": 3})
    ax = cp.pl.benchmark_bars(summary)
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert [b.get_height() for b in bars] == [0.1, 0.2, 0.3]  # lower is better: best first
    assert [t.get_text() for t in ax.get_xticklabels()] == ["gim", "x", "z"]
    auprc = summary.assign(metric="graph_auprc", split="graph")
    bars = cp.pl.benchmark_bars(auprc, metric="graph_auprc", split="graph").patches
    assert [b.get_height() for b in bars] == [0.3, 0.2, 0.1]  # higher is better
    with pytest.raises(ValueError, match="no rows for metric 'mmd'"):
        cp.pl.benchmark_bars(summary, metric="mmd")
    with pytest.raises(ValueError, match="empty"):
        cp.pl.benchmark_bars(summary.iloc[:0])
    with pytest.raises(ValueError, match="lacks column"):
        cp.pl.benchmark_bars(summary.drop(columns="sd"))
    with pytest.raises(ValueError, match="one protocol"):
        cp.pl.benchmark_bars(pd.concat([summary, summary.assign(protocol="q")]))


def test_distributions_one_violin_per_gene_and_group():
    adata = cp.datasets.sachs()
    ctrl = adata[adata.obs["perturbation"] == "cd3cd28"]
    obs = adata[adata.obs["perturbation"] == "cd3cd28+u0126"]

    def violins(ax):
        return [c for c in ax.collections if "PolyCollection" in type(c).__name__]

    ax = cp.pl.distributions(obs, obs, control=ctrl, genes=["pmek", "PIP2", "PKA"])
    assert len(violins(ax)) == 9  # control, predicted, observed × 3 genes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["pmek", "PIP2", "PKA"]
    assert len(violins(cp.pl.distributions(obs, obs, genes=["pmek"]))) == 2
    default = cp.pl.distributions(obs, obs, control=ctrl)  # the 6 genes that moved most
    assert len(default.get_xticklabels()) == 6
    with pytest.raises(ValueError, match="unknown gene"):
        cp.pl.distributions(obs, obs, genes=["nope"])
    with pytest.raises(ValueError, match="need cells"):
        cp.pl.distributions(obs[:0], obs)


def test_target_heatmap_scores_outside_unit_interval_use_their_range():
    scores = pd.DataFrame([[0.5, 4.0], [2.0, 0.0]], index=["p", "q"], columns=["x", "y"])
    ax = cp.pl.target_heatmap(scores, intended={"p": "y"})
    assert ax.images[0].get_clim() == (0.0, 4.0)
    assert ax.images[0].colorbar.ax.get_ylabel() == "target score"
    probs = scores / 4
    assert cp.pl.target_heatmap(probs).images[0].get_clim() == (0.0, 1.0)


def test_network_opposite_edges_bend_apart():
    genes = ["a", "b", "c"]
    G = pd.DataFrame([[0, 1.0, 0], [0.5, 0, 0], [0, 0, 0]], index=genes, columns=genes)
    styles = {a.arrow_patch.get_connectionstyle().rad for a in _arrows(cp.pl.network(G))}
    assert len(styles) == 2  # a → b and b → a do not overlap


def test_module_examples_run_on_bundled_data():
    import doctest

    from causalpert import plotting

    result = doctest.testmod(plotting, verbose=False)
    assert result.attempted >= 8 and result.failed == 0


def test_shift_scatter_one_point_per_gene_with_pearson_r_in_title():
    genes = [f"g{i}" for i in range(30)]
    rng = np.random.default_rng(0)
    observed = pd.Series(rng.normal(size=30), index=genes)
    predicted = pd.Series(0.5 * observed.to_numpy() + 0.1 * rng.normal(size=30), index=genes)
    r = np.corrcoef(predicted, observed)[0, 1]
    ax = cp.pl.shift_scatter(predicted, observed, top=4)
    offsets = ax.collections[0].get_offsets()
    assert offsets.shape == (30, 2)
    np.testing.assert_allclose(offsets[:, 0], observed)  # x = observed, y = predicted
    np.testing.assert_allclose(offsets[:, 1], predicted)
    assert f"r = {r:.2f}" in ax.get_title() and "30 genes" in ax.get_title()
    # the 4 genes that moved most are labelled by their Series index
    moved = np.maximum(predicted.abs(), observed.abs()).sort_values(ascending=False)
    assert sorted(t.get_text() for t in ax.texts) == sorted(moved.index[:4])
    assert ax.get_xlim() == ax.get_ylim()  # same scale on both axes: the diagonal is y = x
    # plain arrays: explicit labels, or none
    assert len(cp.pl.shift_scatter(predicted.to_numpy(), observed.to_numpy()).texts) == 0
    ax = cp.pl.shift_scatter([1.0, -2.0, 0.5], [1.0, -1.0, 0.0], labels=["a", "b", "c"], top=1)
    assert [t.get_text() for t in ax.texts] == ["b"]
    assert "r = n/a" in cp.pl.shift_scatter([1.0, 1.0], [0.0, 2.0]).get_title()


def test_shift_scatter_rejects_mismatched_input():
    with pytest.raises(ValueError, match="2 values, observed 3"):
        cp.pl.shift_scatter([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="same index"):
        cp.pl.shift_scatter(pd.Series([1.0], index=["a"]), pd.Series([1.0], index=["b"]))
    with pytest.raises(ValueError, match="1 labels for 2 genes"):
        cp.pl.shift_scatter([1.0, 2.0], [1.0, 2.0], labels=["a"])
    with pytest.raises(ValueError, match="empty"):
        cp.pl.shift_scatter([], [])


def test_network_signed_colours_edges_by_sign_and_fills_highlighted_nodes():
    genes = ["a", "b", "c", "d"]
    G = pd.DataFrame(0.0, index=genes, columns=genes)
    G.loc["a", "b"], G.loc["b", "c"], G.loc["c", "d"] = 1.0, -0.5, 0.2
    _, ax = plt.subplots()
    assert cp.pl.network(G, signed=True, highlight=["a", "d"],
                         highlight_label="knocked out", ax=ax) is ax
    colours = [a.arrow_patch.get_edgecolor()[:3] for a in _arrows(ax)]
    red, blue = (matplotlib.colors.to_rgb(c) for c in (cp.pl.POSITIVE, cp.pl.NEGATIVE))
    assert sorted(colours) == sorted([red, blue, red])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["positive (2)", "negative (1)", "knocked out"]
    fills = ax.collections[0].get_facecolors()
    highlighted = matplotlib.colors.to_rgba(cp.pl.HIGHLIGHT)
    assert [tuple(f) == highlighted for f in fills] == [True, False, False, True]
    with pytest.raises(ValueError, match="not both"):
        cp.pl.network(G, signed=True, reference=np.eye(4))
    with pytest.raises(ValueError, match="highlight gene"):
        cp.pl.network(G, highlight=["z"])
