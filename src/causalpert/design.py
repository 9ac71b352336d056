"""Experimental design: rank the experiments to run next by the ensemble's disagreement over
predicted cells and over edges (method.md §7, design).

An experiment e is one candidate perturbation at one dose. Member i of a fitted
``cp.Ensemble`` (K ≥ 2 members) predicts n cells X_i(e) [n, d] with the seed
``SeedSequence([seed, i])`` — the same seed for every experiment (common random numbers), so
two candidates with the same features get the same cells and the same score.

**Acquisition (disagreement).** ::

    score(e) = 2 / (K (K − 1)) · Σ_{i<j} E(X_i(e), X_j(e))

the mean over member pairs of the energy distance ``causalpert.metrics.edist`` between the
members' predicted cells. A GIM member predicts a new compound from one draw of its feature
heads' posterior (``GIM.head_draws``: mean + √v(x̃) z, z seeded by ``SeedSequence([seed,
i])``), so the members also disagree where the heads extrapolate (far from the training
drugs v is large; with the heads' means alone the RBF heads revert to the training mean there
and the members agreed most where they knew least). The score is a Monte-Carlo estimate
of how far the members' predictive distributions are apart — the spread of the predictive
mixture, a mutual-information-like quantity (high where a measurement would tell the members
apart, i.e. where the data the members were fitted on say least). It is 0 (up to sampling
noise, which can make it slightly negative) where the members agree.

**What drives it** (reported per experiment, not part of the score):

- ``mean_spread`` = sqrt(Σ_g Var_i μ_ig): the between-member spread of the predicted mean
  μ_i = mean of X_i(e) (ddof = 1);
- ``top_genes``: the 3 genes g with the largest Var_i μ_ig, and ``top_share`` the share of
  Σ_g Var_i μ_ig they hold;
- ``target_sd`` = Σ_g sd_i π_ig: the members' disagreement on the perturbation's target
  probabilities π (``Ensemble.target_probabilities_sd`` summed over genes; NaN for models
  without target scores). Large ``target_sd``: the members disagree on *what* the
  perturbation hits; small ``target_sd`` with a large score: they agree on the targets but
  not on how the effect spreads through the network (or on its size).

**Information density (β = ``density``).** Let Δ(e) = mean_i μ_i − μ₀ be the ensemble-mean
predicted mean shift against control (μ₀: the members' mean control cells). An experiment
far from every other candidate in predicted effect is an outlier of the candidate set: what
it would teach transfers to few others (and a head draw far from the training drugs makes
such outliers). Its disagreement is weighted by ::

    ρ(e) = mean_{e′ ≠ e} exp(−‖Δ(e) − Δ(e′)‖² / h),   h = median_{e ≠ e′} ‖Δ(e) − Δ(e′)‖²

(ρ = 1 with one experiment), i.e. s(e) = score(e) · ρ(e)^β (Settles & Craven's information
density; β = 0 switches it off). Session 9's design benchmark found the undensified
acquisition pulling batches to the edge of the feature cloud, like k-center, and losing to
random there; β = 1 was set as the default before it was re-run (README, Uncertainty).

**Edge information (γ = ``edges``; session 13).** Disagreement over predicted cells is not
disagreement over the network: an intervention on gene g is what identifies g's out-edges
(it moves g's children and nothing else moves g alone). With V_g = Σ_{j≠g} sd_i(w_gj)² the
members' variance of gene g's out-edges (``Ensemble.graph_sd``) and n_g = Σ_p π̄_g(p) how
often the training perturbations already hit g (the ensemble's mean target probabilities),
an experiment's edge term is the variance it is expected to remove if each intervention on g
counts alike (variance ∝ 1 / interventions) ::

    g(e) = Σ_g V_g · π̄_g(e) / (n_g + π̄_g(e))        (0 where π̄_g(e) = 0)

(π̄_g(e): the members' mean target probabilities of the candidate, the same at every dose). A
never-hit gene's whole variance counts; a gene hit by many training perturbations adds
little. The score the batch rule uses is s(e) = c(e) / max c + γ · g(e) / max g with c(e) =
score(e) · ρ(e)^β (a term whose max is ≤ 0 adds 0); γ = 0, or a model without a graph or
target probabilities, gives s(e) = c(e). Within a batch the counts grow with each pick
(n ← n + π̄(pick), g recomputed, still divided by the first max g), so a second experiment
hitting the same genes gains less — the batch spreads its interventions. (Sessions 11–12
used the mean binary entropy of the edge probabilities around g; with K = 3 members that is a
count of split votes, largest at hubs, and it pulled batches onto the same hubs. The variance
form was set as the default before the design benchmark was re-run with it.)

**Batch selection (greedy, diversity λ = ``diversity`` ∈ [0, 1]).** Starting from an empty
batch B, repeatedly pick the remaining experiment with the largest ::

    a(e) = max(s(e), 0) · max(0, 1 − λ · max_{b∈B} cos(Δ(e), Δ(b)))

(ties — e.g. when every remaining a(e) is 0 — go to the smaller max cosine, then the larger
s(e), then the earlier experiment; cos with a zero shift is 0). The first
pick is the top s(e); an experiment whose predicted shift points the way of one already
picked (the same drug at an adjacent dose, two drugs with the same predicted effect) is
discounted to 0 as the cosine reaches 1, so near-duplicates do not fill the batch. The greedy
runs over all experiments: ``rank`` is the order of picking, ``selected`` = rank ≤ k;
``batch_score`` is a(e) when picked and ``similar_to`` the already-picked experiment with the
largest cosine (``similarity``; empty and NaN for the first pick); ``density`` is ρ(e),
``edge_gain`` g(e) and ``value`` s(e) (both before any pick). λ = 0, β = 0 and γ = 0 rank by
score alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ._progress import progress_bar
from .metrics import edist
from .models.ensemble import Ensemble, member_seed

#: columns of ``rank``'s result, in order
COLUMNS = ("rank", "experiment", "candidate", "dose", "score", "density", "edge_gain",
           "value", "batch_score",
           "selected", "mean_spread", "target_sd", "top_genes", "top_share", "similar_to",
           "similarity")
#: experiments from which ``rank`` shows a progress bar by default
PROGRESS_FROM = 20


def rank(model, candidates, *, doses=(1.0,), k: int = 8, n_cells: int = 200, seed: int = 0,
         diversity: float = 1.0, density: float = 1.0, edges: float = 1.0,
         smiles: bool = False,
         mode: str = "map", head_draws: bool = True,
         progress: bool | None = None) -> pd.DataFrame:
    """Rank candidate experiments (candidate × dose) by the members' disagreement (predicted
    cells, and edges at the genes hit) and pick a batch of k that are not near-duplicates
    (the rules: the module docstring).

    Args:
        model: a fitted ``cp.Ensemble`` with ≥ 2 members.
        candidates: perturbation names (seen in fit, a combination ``"A+B"``, or for a model
            with intended targets a modelled gene to knock out); a DataFrame of features
            (index: candidate names, columns: the model's features) for unseen ones; a
            ``{name: SMILES}`` mapping (a model fitted with a featurizer); or a list of SMILES
            strings with ``smiles=True``.
        doses: doses to try each candidate at (each pair is an experiment).
        k: batch size: how many experiments get ``selected``.
        n_cells: cells each member predicts per experiment (≥ 2).
        seed: prediction seed (member i: ``SeedSequence([seed, i])``); same seed → same frame.
        diversity: λ of the batch rule, 0 (rank by score alone) … 1 (full penalty).
        density: β of the information density ρ(e)^β (≥ 0; 0: off).
        edges: γ, the weight of the edge-uncertainty term g(e) (≥ 0; 0: off).
        smiles: a list of strings in ``candidates`` is SMILES, not names.
        mode: members' prediction mode (``"map"``, ``"mean"`` or ``"sample"``).
        head_draws: GIM members predict new compounds from a draw of their feature heads'
            posterior (``GIM.head_draws``); False: from the heads' means.
        progress: progress bar (default: from 20 experiments on, off with
            CAUSALPERT_PROGRESS=0).

    Returns:
        DataFrame, one row per experiment in rank order (best first), columns ``COLUMNS``:
        ``experiment`` is ``"candidate @ dose"``.

    Examples:
        >>> ranked = cp.design.rank(ens, ["pert_00", "pert_41", "g03"], doses=[0.5, 2.0], k=2)
        >>> ranked.loc[ranked["selected"], ["experiment", "score", "top_genes"]]
    """
    names, kw = _check(model, candidates, doses=doses, k=k, n_cells=n_cells, seed=seed,
                       diversity=diversity, density=density, edges=edges, smiles=smiles)
    dose_list = [float(x) for x in np.atleast_1d(np.asarray(doses, dtype=np.float64))]
    target_sd, pbar, V, n_hit = _target_terms(model, names, kw)
    exps = [(c, x) for c in range(len(names)) for x in dose_list]
    K, d = len(model.members_), len(model.genes_)
    scores = np.empty(len(exps))
    mus = np.empty((len(exps), K, d))
    show = (None if len(exps) >= PROGRESS_FROM else False) if progress is None else progress
    with progress_bar("design: scoring experiments", len(exps), enabled=show) as advance:
        for e, (c, x) in enumerate(exps):
            X = [_member_cells(m, i, names[c], x, kw, n_cells=n_cells, seed=seed, mode=mode,
                               head_draws=head_draws)
                 for i, m in enumerate(model.members_)]
            scores[e] = np.mean([edist(X[i], X[j]) for i in range(K) for j in range(i + 1, K)])
            mus[e] = [Xi.mean(0) for Xi in X]
            advance()
    mu0 = np.mean([np.asarray(m.control_cells_, dtype=np.float64).mean(0)
                   for m in model.members_], axis=0)
    shifts = mus.mean(1) - mu0
    rho = information_density(shifts)
    P = pbar[[c for c, _ in exps]]  # [E, d] (NaN without target probabilities)
    g = edge_gain(P, V, n_hit)
    cells = scores * rho**density
    value = combined_score(cells, g, edges)
    gained = (edges, P, V, n_hit) if edges > 0 and not np.isnan(g).any() else None
    order, batch, similar, cosine = _greedy(cells, shifts, diversity, gained)
    var = mus.var(1, ddof=1)  # [E, d] between-member variance of the predicted mean
    top = np.argsort(-var, axis=1, kind="stable")[:, :3]
    genes = np.asarray(model.genes_)
    total = var.sum(1)
    labels = [f"{names[c]} @ {x:g}" for c, x in exps]
    rows = pd.DataFrame({
        "experiment": labels,
        "candidate": [names[c] for c, _ in exps],
        "dose": [x for _, x in exps],
        "score": scores,
        "density": rho,
        "edge_gain": g,
        "value": value,
        "batch_score": batch,
        "mean_spread": np.sqrt(total),
        "target_sd": [target_sd[c] for c, _ in exps],
        "top_genes": [",".join(genes[t]) for t in top],
        "top_share": np.take_along_axis(var, top, 1).sum(1) / np.where(total > 0, total, 1),
        "similar_to": [labels[s] if s >= 0 else "" for s in similar],
        "similarity": cosine,
    })
    rows = rows.iloc[order].reset_index(drop=True)
    rows["rank"] = np.arange(1, len(rows) + 1)
    rows["selected"] = rows["rank"] <= k
    return rows[list(COLUMNS)]


def information_density(shifts: np.ndarray) -> np.ndarray:
    """ρ(e) = mean_{e′ ≠ e} exp(−‖Δ(e) − Δ(e′)‖² / h), h the median squared distance between
    distinct experiments (1 if it is 0) [E]; 1 for a single experiment."""
    E = len(shifts)
    if E < 2:
        return np.ones(E)
    sq = (shifts**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None] - 2 * shifts @ shifts.T, 0.0)
    off = ~np.eye(E, dtype=bool)
    h = float(np.median(d2[off])) or 1.0
    return np.where(off, np.exp(-d2 / h), 0.0).sum(1) / (E - 1)


def combined_score(cells: np.ndarray, edge: np.ndarray, edges: float,
                   edge_scale: float | None = None) -> np.ndarray:
    """s(e) = c(e) / max c + γ · g(e) / G with G = ``edge_scale`` or max g (a term whose
    divisor is ≤ 0 adds 0); c(e) when γ is 0 or g is NaN (no graph or target probabilities)."""
    if edges == 0 or np.isnan(edge).any():
        return cells

    def unit(v, top):
        return v / top if top > 0 else np.zeros_like(v)

    return unit(cells, cells.max()) + edges * unit(
        edge, edge.max() if edge_scale is None else edge_scale)


def edge_variance(graph_sd: np.ndarray) -> np.ndarray:
    """V_g = Σ_{j≠g} sd_gj² [d]: the members' variance of gene g's out-edges (row g)."""
    sd = np.asarray(graph_sd, dtype=np.float64) ** 2
    np.fill_diagonal(sd, 0.0)
    return sd.sum(1)


def edge_gain(P: np.ndarray, V: np.ndarray, n: np.ndarray) -> np.ndarray:
    """g(e) = Σ_g V_g π̄_g(e) / (n_g + π̄_g(e)) [E] for target probabilities P [E, d]
    (0 where π̄_g(e) = 0; NaN rows stay NaN)."""
    P = np.asarray(P, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(P > 0, P / (n + P), 0.0)
    return np.where(np.isnan(P).any(1), np.nan, share @ V)


def _greedy(scores: np.ndarray, shifts: np.ndarray, diversity: float, gained=None):
    """Greedy order of all experiments under a(e) = max(s, 0)·(1 − λ·max cos)₊, s = scores;
    with ``gained`` = (γ, P [E, d], V [d], n [d]), s = scores / max scores + γ g / max g₀
    with the edge term g recomputed after each pick from the counts n + Σ_picked P.

    Returns (order [E], a(e) when picked [E], index of the most similar earlier pick or −1,
    that cosine or NaN) [E] each."""
    E = len(scores)
    if gained is not None:
        gamma, P, V, n = gained
        cells, scale = scores, edge_gain(P, V, n).max()
        n = np.asarray(n, dtype=np.float64).copy()
    norm = np.linalg.norm(shifts, axis=1)
    unit = np.divide(shifts, norm[:, None], out=np.zeros_like(shifts), where=norm[:, None] > 0)
    best_cos, best_at = np.full(E, -np.inf), np.full(E, -1)
    left = np.ones(E, dtype=bool)
    order, batch, similar, cosine = [], np.zeros(E), np.full(E, -1), np.full(E, np.nan)
    for _ in range(E):
        if gained is not None:
            scores = combined_score(cells, edge_gain(P, V, n), gamma, edge_scale=scale)
        base = np.maximum(scores, 0.0)
        penalty = np.clip(1 - diversity * np.maximum(best_cos, 0.0), 0.0, 1.0)
        a = np.where(left, base * penalty, -np.inf)
        # largest a, then least similar, then largest score, then earliest (lexsort: the
        # last key is the primary one)
        cand = np.flatnonzero(left)
        pick = cand[np.lexsort((cand, -scores[cand], best_cos[cand], -a[cand]))[0]]
        order.append(pick)
        batch[pick], similar[pick] = a[pick], best_at[pick]
        cosine[pick] = best_cos[pick] if best_at[pick] >= 0 else np.nan
        left[pick] = False
        if gained is not None:
            n += P[pick]
        cos = unit @ unit[pick]
        better = cos > best_cos
        best_cos, best_at = np.where(better, cos, best_cos), np.where(better, pick, best_at)
    return np.asarray(order), batch, similar, cosine


def _member_cells(member, i: int, name: str, dose: float, kw: dict, *, n_cells: int,
                  seed: int, mode: str, head_draws: bool = True) -> np.ndarray:
    """Member i's predicted cells [n, d] for one experiment (seed ``SeedSequence([seed, i])``)."""
    if "smiles" in kw:
        args = {"smiles": [kw["smiles"][name]]}
    else:
        args = {"perturbations": [name], "features": kw.get("features")}
    draws = getattr(member, "head_draws", None) if head_draws else None
    with (draws(member_seed(seed, i)) if draws is not None and member.config.variant == "latent"
          else contextlib.nullcontext()):  # GIM: one draw of its heads' posterior
        out = member.predict(**args, doses=dose, n_cells=n_cells, mode=mode,
                             seed=member_seed(seed, i))
    return np.asarray(out.X, dtype=np.float64)


def _target_terms(model: Ensemble, names: list[str], kw: dict):
    """Per candidate: Σ_g sd over members of π_g [C] and the members' mean π̄ [C, d]; the
    members' out-edge variance V [d] and the training perturbations' hit counts n [d] (NaN
    without target scores or a graph); also checks that every candidate resolves (an unknown
    name fails here, before any sampling)."""
    if "smiles" in kw:
        args = {"smiles": [kw["smiles"][n] for n in names]}
    else:
        args = {"perturbations": names, "features": kw.get("features")}
    d = len(model.genes_)
    nan = np.full(d, np.nan)
    if not model.has_target_scores:
        model.members_[0].predict(**args, n_cells=1)  # resolves every candidate
        return np.full(len(names), np.nan), np.full((len(names), d), np.nan), nan, nan
    mean, sd = model.target_probabilities_stats(**args)
    pbar, sd = mean.to_numpy(), sd.to_numpy().sum(1)
    if not model.has_graph:
        return sd, pbar, nan, nan
    n_hit = model.target_probabilities().to_numpy().sum(0)
    return sd, pbar, edge_variance(model.graph_sd().to_numpy()), n_hit


def _check(model, candidates, *, doses, k, n_cells, seed, diversity, density, edges, smiles):
    """Every input checked with a one-line error; returns (candidate names, predict keywords)."""
    if not isinstance(model, Ensemble) or model.members_ is None:
        raise ValueError("design needs a fitted cp.Ensemble(...): its members' disagreement is "
                         f"the acquisition (got {_what(model)})")
    if len(model.members_) < 2:
        raise ValueError("design needs an ensemble of ≥ 2 members (got 1): refit with "
                         "cp.Ensemble(template, n=5)")
    d = np.atleast_1d(np.asarray(doses, dtype=object))
    try:
        d = d.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"doses must be numbers ≥ 0, got {doses!r}") from None
    if d.ndim != 1 or len(d) == 0 or not np.isfinite(d).all() or (d < 0).any():
        raise ValueError(f"doses must be a non-empty list of finite numbers ≥ 0, got {doses!r}")
    if len(set(d.tolist())) != len(d):
        raise ValueError(f"doses has repeats: {d.tolist()}")
    for name, v, low in (("k", k, 1), ("n_cells", n_cells, 2), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
            raise ValueError(f"{name} must be an integer ≥ {low}, got {v!r}")
    if isinstance(diversity, bool) or not isinstance(diversity, int | float) \
            or not 0 <= diversity <= 1:
        raise ValueError(f"diversity must be in [0, 1] (0: rank by score alone), got "
                         f"{diversity!r}")
    for name, v in (("density", density), ("edges", edges)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < float("inf"):
            raise ValueError(f"{name} must be a number ≥ 0 (0: off), got {v!r}")
    kw: dict = {}
    if isinstance(candidates, pd.DataFrame):
        names = [str(n) for n in candidates.index]
        kw["features"] = candidates
    elif isinstance(candidates, Mapping):
        names = [str(n) for n in candidates]
        kw["smiles"] = {str(n): str(s) for n, s in candidates.items()}
    elif isinstance(candidates, Sequence | np.ndarray | pd.Index | pd.Series) \
            and not isinstance(candidates, str | bytes):
        names = [str(n) for n in candidates]
        if smiles:
            kw["smiles"] = {n: n for n in names}
    else:
        raise ValueError("candidates must be a list of perturbation names, a DataFrame of "
                         "features (index: names) or a {name: SMILES} dict, got "
                         f"{type(candidates).__name__}")
    if smiles and "smiles" not in kw:
        raise ValueError("smiles=True is for a list of SMILES strings; pass a DataFrame of "
                         "features or a list of names without it")
    if not names:
        raise ValueError("no candidates: pass at least one perturbation name, feature row or "
                         "SMILES")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"candidate names repeat ({', '.join(dup[:3])}): give each once "
                         "(doses= lists the doses)")
    if any(not n.strip() for n in names):
        raise ValueError("a candidate name is empty: name every candidate")
    return names, kw


def read_candidates(path):
    """Candidates from a file, for ``rank``: a CSV (``.tsv``: tab-separated) with a ``smiles``
    column → {name: SMILES} (names from a ``name`` column, else the first other column, else
    the SMILES); a CSV with one column → names; another CSV → a feature table (first column:
    the names); any other file → names, one per line (blank lines and ``#`` comments skipped).
    """
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass a CSV of features (first column: "
                                "names), a CSV with a smiles column, or a text file of names")
    if path.suffix.lower() in (".csv", ".tsv"):
        try:
            table = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        except pd.errors.EmptyDataError:
            table = pd.DataFrame()
        if table.empty:
            raise ValueError(f"{path} is empty: give one candidate per row")
        cols = {str(c).strip().lower(): c for c in table.columns}
        if "smiles" in cols:
            smi = table[cols["smiles"]].astype(str)
            others = [c for c in table.columns if c != cols["smiles"]]
            name = cols.get("name", others[0] if others else None)
            names = smi if name is None else table[name].astype(str)
            if names.duplicated().any():
                raise ValueError(f"{path}: candidate {names[names.duplicated()].iloc[0]!r} "
                                 "is listed twice: give each once")
            return dict(zip(names, smi, strict=True))
        if table.shape[1] == 1:
            return table.iloc[:, 0].astype(str).str.strip().tolist()
        table = table.set_index(table.columns[0])
        bad = [str(c) for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
        if bad:
            raise ValueError(f"{path}: feature column {bad[0]!r} is not numeric (a feature "
                             "table has the names first, then numbers; a SMILES table needs "
                             "a 'smiles' column)")
        table.index = table.index.astype(str)
        return table
    lines = [s.strip() for s in path.read_text().splitlines()]
    names = [s for s in lines if s and not s.startswith("#")]
    if not names:
        raise ValueError(f"{path} is empty: give one perturbation or gene name per line")
    return names


def _what(model) -> str:
    if isinstance(model, Ensemble):
        return "an ensemble that is not fitted: call ens.fit(adata) first"
    return f"{type(model).__name__}" + (f" ({model.name})" if hasattr(model, "name") else "")
