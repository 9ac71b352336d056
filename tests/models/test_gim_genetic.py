"""GIM on genetic perturbations: the intended-target prior, knockouts never seen in training
(predicted from their intended gene through the learned network) and combinations."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from causalpert.core import sample_stationary
from causalpert.data.ground_truth import random_drift
from causalpert.metrics import edist
from causalpert.models import GIM, MODELS

D, KO_SHIFT = 8, -3.0


def _screen(drift, shift, names, sizes, seed):
    """AnnData of ``sizes[k]`` stationary cells of context k (drift shift ``shift[k]``), one
    perturbation label per context; each perturbation is aimed at the gene it is named by."""
    cells = sample_stationary(drift, shift, drift.log_sigma.detach().expand(len(names), -1),
                              max(sizes), generator=torch.Generator().manual_seed(seed))
    x = np.concatenate([cells[k, :n].numpy() for k, n in enumerate(sizes)]).astype(np.float32)
    obs = pd.DataFrame({"perturbation": np.repeat(names, sizes)})
    obs.index = [f"c{i}" for i in range(len(obs))]
    adata = ad.AnnData(x, obs=obs,
                       var=pd.DataFrame(index=[f"g{j}" for j in range(shift.shape[1])]))
    adata.uns["intended_targets"] = {p: p for p in names[1:]}
    return adata


def _knockouts(seed: int = 0):
    """Control + one knockdown (drift shift −3) of each of the first 7 genes of a random
    linear graph; the truth drift is returned for closed-form checks."""
    rng = np.random.default_rng(seed)
    drift, adj = random_drift(D, "linear", rng, parents=1.5)
    names = ["control"] + [f"g{j}" for j in range(D - 1)]
    shift = torch.zeros(len(names), D, dtype=torch.float64)
    for k in range(1, len(names)):
        shift[k, k - 1] = KO_SHIFT
    sizes = [600] + [150] * (len(names) - 1)
    return _screen(drift, shift, names, sizes, seed), drift, adj


@pytest.fixture(scope="module")
def setup():
    adata, _, adj = _knockouts()
    child = int(np.argmax(adj[: D - 1].sum(1)))  # the knocked-out gene with most children
    held = f"g{child}"
    train = adata[adata.obs["perturbation"] != held].copy()
    model = GIM(seed=0, steps=800, refit_steps=300).fit(train, dose_key=None, progress=False)
    return adata, train, model, held


def test_intended_prior_makes_targets_likely(setup):
    _, _, model, _ = setup
    probs = model.target_probabilities()
    diag = [probs.loc[p, p] for p in probs.index]
    assert np.mean(diag) > 0.8
    assert model.genetic_ is not None and model.genetic_["n_perturbations"] == 6


def test_unseen_knockout_beats_the_average_knockout(setup):
    adata, train, model, held = setup
    obs = adata[adata.obs["perturbation"] == held].X
    pred = model.predict([held], n_cells=300, seed=1).X  # the name is a modelled gene
    mean_ko = MODELS["mean-shift"](seed=0).fit(train, dose_key=None)
    base = mean_ko.predict([held], n_cells=300, seed=1).X
    assert edist(pred, obs) < 0.5 * edist(base, obs)
    # the same through an explicit intended-target map under another name
    other = model.predict(["new_ko"], n_cells=300, seed=1,
                          intended_targets={"new_ko": [held]}).X
    np.testing.assert_allclose(other, pred)
    probs = model.target_probabilities([held])
    assert probs.loc[held].idxmax() == held


def test_unknown_name_says_how_to_name_genes(setup):
    _, _, model, _ = setup
    with pytest.raises(ValueError, match="intended_targets"):
        model.predict(["not_a_gene"])


def test_combination_composes_shifts_in_the_model(setup):
    _, _, model, _ = setup
    a, b = model.seen_[0], model.seen_[1]
    pred = model.predict([f"{a}+{b}"], n_cells=4000, seed=2).X.mean(0)
    # closed form of the fitted linear model: μ = −W⁻¹(b + u_A + u_B) in model coordinates
    pi, u, _ = model._interventions(torch.zeros(2, model.f_mean_.shape[0]), torch.ones(2),
                                    [a, b])
    shift = ((pi > 0.5).double() * u.double()).sum(0)
    W, bias = model.drift.W.detach().double(), model.drift.b.detach().double()
    mu = -torch.linalg.solve(W, bias + shift) * model.s0_.double() + model.mu0_.double()
    np.testing.assert_allclose(pred, mu.detach().numpy(), atol=0.08)
    single = model.predict([a], n_cells=4000, seed=2).X.mean(0)
    assert np.abs(pred - single).max() > 0.5  # the second knockout matters
    probs = model.target_probabilities([f"{a}+{b}"])
    assert probs.loc[f"{a}+{b}", a] > 0.5 and probs.loc[f"{a}+{b}", b] > 0.5


def test_additive_composition_adds_mean_shifts(setup):
    _, train, _, _ = setup
    m = MODELS["additive"](seed=0).fit(train, dose_key=None)
    a, b = "g0", "g2"
    mu0 = m.control_cells_.double().mean(0).numpy()
    pa, pb, pab = (m.predict([p], n_cells=3000, seed=3).X.mean(0) for p in (a, b, f"{a}+{b}"))
    np.testing.assert_allclose(pab - mu0, (pa - mu0) + (pb - mu0), atol=0.05)


def test_prior_can_be_switched_off_and_is_saved(setup, tmp_path):
    _, train, model, held = setup
    model.save(tmp_path / "m")
    loaded = GIM.load(tmp_path / "m")
    assert loaded.intended_targets_ == model.intended_targets_
    np.testing.assert_allclose(loaded.predict([held], n_cells=50, seed=0).X,
                               model.predict([held], n_cells=50, seed=0).X)
    blind = GIM(seed=0, steps=50, refit_steps=0, evidence_cells=0).fit(
        train, dose_key=None, intended_targets={}, progress=False)
    assert blind.genetic_ is None
    with pytest.raises(ValueError, match="no training perturbation had a modelled intended"):
        blind.predict([held])


def test_knockout_size_rule_is_not_set_by_one_outlying_knockout():
    """Seven knockouts take 15 % of the way to zero, one (a gene in a feedback loop) 90 %:
    the rule is ``toward_zero`` with ρ = 0.15 exactly (the median), where a least-squares ρ
    would be pulled to ≈ 0.5 by the outlier's large z."""
    from causalpert.models.gim import knockout_size_rule

    z = np.array([-1.8, -2.0, -1.7, -1.2, -1.3, -1.7, -1.3, -5.0])
    e = 0.15 * z
    e[-1] = 0.9 * z[-1]
    rule = knockout_size_rule(np.arange(8), e, z)
    assert rule["rule"] == "toward_zero"
    assert rule["toward_zero"] == pytest.approx(0.15)
    assert (e * z).sum() / (z**2).sum() > 0.5  # what the mean-squares fit would have said
    constant = knockout_size_rule(np.arange(8), np.full(8, -0.4), z)
    assert constant["rule"] == "constant" and constant["constant"] == pytest.approx(-0.4)


def test_coexpression_rows_are_the_correlation_matrix():
    from causalpert.models.gim import coexpression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    x[:, 3] = 2.0  # constant in control: a row and column of 0, not NaN
    C = np.corrcoef(np.delete(x, 3, axis=1), rowvar=False)
    rows = coexpression(torch.as_tensor(x), [0, 3, 4])
    np.testing.assert_allclose(np.delete(rows[[0, 2]], 3, axis=1), C[[0, 3]], atol=1e-12)
    assert np.all(rows[1] == 0) and np.all(rows[:, 3] == 0)


def _modules(seed: int = 0):
    """Two modules of 5 genes, each the children of a hub gene (10, 11) that is never
    knocked out, so module genes co-express in control cells (a linear SDE). A knockout of
    gene j shifts it by −2 and *directly* raises its module's reporter (gene 4 or 9) by
    1.5 — against the module's positive co-expression, so no edge out of j carries it."""
    from causalpert.core.drift import LinearDrift

    d = 12
    w = np.zeros((d, d))  # w[child, parent]
    w[0:5, 10] = w[5:10, 11] = 0.9
    drift = LinearDrift(d).double()
    with torch.no_grad():
        drift.w_off.copy_(torch.as_tensor(w))
        drift.log_sigma.fill_(-0.5)
    names = ["control"] + [f"g{j}" for j in (0, 1, 2, 3, 5, 6, 7, 8)]
    shift = torch.zeros(len(names), d, dtype=torch.float64)
    for k, p in enumerate(names[1:], start=1):
        j = int(p[1:])
        shift[k, j], shift[k, 4 if j < 5 else 9] = -2.0, 1.5
    sizes = [600] + [200] * (len(names) - 1)
    return _screen(drift, shift, names, sizes, seed)


def test_genetic_head_predicts_what_else_an_unseen_knockout_moves(tmp_path):
    """Knockouts of module A's genes all raise gene 4: a knockout of a module-A gene never
    seen (g2) is predicted to raise it too — from where g2 sits in the control cells'
    co-expression — and the leave-one-knockout-out CV keeps the head; with
    ``genetic_head="off"`` only g2 moves directly, and the network lowers gene 4. (Both
    fits also spread g2's drop over its module: g2 was never knocked out, so edges out of
    it are not identified.)"""
    adata = _modules()
    train = adata[adata.obs["perturbation"] != "g2"].copy()
    obs = adata[adata.obs["perturbation"] == "g2"].X
    ctrl = adata[adata.obs["perturbation"] == "control"].X.mean(0)
    fits = {h: GIM(seed=0, steps=600, refit_steps=200, genetic_head=h).fit(
        train, dose_key=None, progress=False) for h in ("cv", "off")}
    assert fits["cv"].genetic_["head"] and not fits["off"].genetic_["head"]
    assert fits["cv"].genetic_["head_cv_error"] < fits["cv"].genetic_["head_cv_error_none"]
    pred = {h: m.predict(["g2"], n_cells=600, seed=1).X for h, m in fits.items()}
    shift = {h: p.mean(0)[4] - ctrl[4] for h, p in pred.items()}
    assert shift["cv"] - shift["off"] > 0.8  # observed: +1.5
    assert edist(pred["cv"], obs) < 0.8 * edist(pred["off"], obs)
    assert fits["cv"].target_probabilities(["g2"]).loc["g2", "g4"] > 0.5
    # how far the prediction rests on the head: its sd (≥ 0, finite); NaN without the head
    sd = {h: m.head_uncertainty(["g2", "g0"])["effect_sd"] for h, m in fits.items()}
    assert np.isfinite(sd["cv"]["g2"]) and sd["cv"]["g2"] >= 0 and sd["cv"]["g0"] == 0
    assert np.isnan(sd["off"]["g2"])
    fits["cv"].save(tmp_path / "m")  # the head is saved with the model
    np.testing.assert_allclose(GIM.load(tmp_path / "m").predict(["g2"], n_cells=50, seed=0).X,
                               fits["cv"].predict(["g2"], n_cells=50, seed=0).X)


def test_unknown_genetic_head_is_a_one_line_error():
    with pytest.raises(ValueError, match="genetic_head must be 'cv' or 'off'") as err:
        GIM(genetic_head="ridge")
    assert "\n" not in str(err.value)
