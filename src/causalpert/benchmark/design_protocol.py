"""Protocol ``design`` (docs/benchmarks.md): does the ensemble's acquisition pick better
experiments than ``random`` or feature-space ``kcenter``?

Data: ``paper-synthetic`` (``protocols.paper_synthetic``) for one (sim, seed). The **pool** is
its 40 training perturbations; an **experiment** is one perturbation with all its training
doses (0.5, 1, 1.5, 2): choosing it reveals its ``train`` cells at every dose (50 per dose).
The **test** is the ``full_ood`` split (20 perturbations never in the pool, features only),
split once more (``validation_split``, by ``default_rng([seed, 3])``) into 10 **validation**
and 10 **test** perturbations: a choice between acquisition variants may look at the
validation half only (``acquisition-validated``), and is then scored on the other half.

Rules (each stated once, here):

- **start set**: ``start`` perturbations drawn by ``default_rng([seed, 0])`` from the pool
  (without replacement), the same for every strategy;
- **round r = 0 … rounds**: fit ``Ensemble(GIM(causal=sim, seed=seed, **gim_options), n=members,
  seed=seed)`` on the control cells + the ``train`` cells of the chosen perturbations, for *every*
  strategy (the scored model is the same kind everywhere; a set of perturbations seen twice —
  round 0, and the last round when the pool is used up — gives the same fit, computed once; with
  ``out``, a random or k-center job whose set another strategy's job file already scored takes
  those scores, ``_same_fit``). Score it: ``edist`` on every ``full_ood`` context (the ensemble's
  mixture predictions, ``evaluate.evaluate_prediction``, prediction seed ``seed``), averaged over
  contexts (``edist``: all 20; ``edist_validation`` and ``edist_test``: the two halves);
  ``target_auroc`` of the ensemble's mean target scores (``Ensemble.target_scores``, what the
  runner ranks by) of the ``full_ood`` perturbations against their true targets; ``graph_auprc``
  of the mean graph (``Ensemble.graph``) against the true adjacency (``evaluate.evaluate_targets``
  / ``evaluate_graph``, as the runner);
- **next batch** (after rounds 0 … rounds − 1) of ``batch`` distinct perturbations from the
  remaining pool:

  - ``acquisition``: ``design.rank(ens, features of the remaining, doses=training doses,
    k=batch, seed=seed)`` (diversity λ = 1, information density β = 1, edge term γ = 1:
    ``rank``'s defaults, set before session 11's run) ranks every
    (perturbation, dose); a perturbation ranks where its best experiment ranks (the
    earliest in the greedy order), and the batch is the first ``batch`` distinct
    perturbations in that order (GIM members predict the candidates from a draw of their
    heads' posterior, ``GIM.head_draws``);
  - ablations, not run by default, each the default with one thing changed:
    ``acquisition-means`` the heads' means instead of draws; ``acquisition-nodensity`` β = 0;
    ``acquisition-cells`` γ = 0 (session 10's acquisition);
  - ``acquisition-validated`` (not a run: rows added by ``add_validated``): per (sim, seed)
    the acquisition variant run with the smallest area under the ``edist_validation`` curve
    (ties: the first in ``STRATEGIES`` order), its rows copied. The graph has no held-out
    half (one true network), so nothing is chosen on it;
  - ``random``: ``default_rng([seed, r + 1, 1]).choice(remaining, batch, replace=False)``
    (r + 1: the round the batch enters; remaining in pool order);
  - ``random-1``, ``random-2``, … (not run by default): further random draws, by
    ``default_rng([seed, r + 1, 1, j])`` for ``random-j``. One draw per seed is a noisy
    estimate of what random choice achieves (the same draw served every session);
    ``random-mean`` (not a run: rows added by ``add_random_mean``) is, per (sim, seed), the
    mean area over every random draw run (``random`` and ``random-j``);
  - ``kcenter``: greedy k-center (``kcenter``) on the pool's features standardised over the
    40 pool perturbations (z-scores, columns of sd 0 set to 0): repeatedly the remaining
    perturbation farthest (Euclidean) from its nearest chosen one;

- **area under a curve** (``auc`` rows): trapezoid over rounds 0 … rounds of the per-round
  value, divided by ``rounds`` (so it is on the metric's own scale: the mean height).

A fit that diverges or ends unstable gives NaN scores for that round, ends the strategy's
curve there (nothing to choose with) and leaves its areas NaN (``summarise_design`` counts
only the seeds with an area: ``n_seeds``); the error is printed on stderr.

**Knockout pool** (``pool="knockouts"``, session 15): where a round of drugs already touches
nearly every one of paper-synthetic's 20 genes, no design can show a graph-curve win (session
14); a genome-scale knockout screen is the opposite — far more genes than a round can knock
out. Data: ``knockout-screen`` (``simulate``; 40 genes, a knockdown of each, 200 cells, intended
targets known). ``default_rng([seed, 3]).permutation`` of the genes puts the first quarter
(10) in the **test** (their knockouts are never chosen; ``edist`` = mean over them of the
ensemble's predicted knockout, a gene never knocked out predicted from its name) and the rest
(30) in the **pool**, in gene order; an experiment is one knockout (dose 1, no dose response);
start 4, then 4 rounds of 4 (``POOL_SIZES``), so 20 of the 30 are chosen at the end and
the curves do not meet. The rules above hold with: ``acquisition`` ranks the remaining genes
as knockout candidates (``design.rank(ens, remaining, doses=(1,), …)``; the edge term sees
the candidates' targets through the intended-target prior, as a knockout screen knows
them); ``kcenter`` has no features here and is not run; scores ``edist`` and
``graph_auprc`` (``KNOCKOUT_METRICS``). Job files ``design-<sim>-knockouts-seed…``.

Resumable: with ``out``, each finished (strategy, round) — its rows, the chosen set and the
next batch — goes to ``out/jobs/design-<sim>-seed<seed>-<strategy>-round<r>.json``
(atomically); a rerun reuses every file whose key (sim, seed, strategy, round, sizes,
members, GIM options, design, causalpert version) and chosen set match.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from .._io import atomic_write
from .evaluate import evaluate_graph, evaluate_prediction, evaluate_targets
from .protocols import paper_synthetic

STRATEGIES = ("acquisition", "random", "kcenter", "acquisition-means", "acquisition-nodensity",
              "acquisition-cells", "random-1", "random-2", "random-3", "random-4")
#: what ``run_design`` / the CLI run by default (the other acquisitions are ablations)
DEFAULT_STRATEGIES = ("acquisition", "random", "kcenter")
#: the knockout pool's default: no features for k-center; three random draws (random-mean)
KNOCKOUT_STRATEGIES = ("acquisition", "random", "random-1", "random-2")
#: ``design.rank`` options of each acquisition strategy (part of its jobs' keys)
ACQUISITIONS = {"acquisition": {"head_draws": True, "density": 1.0, "edges": 1.0},
                "acquisition-means": {"head_draws": False, "density": 1.0, "edges": 1.0},
                "acquisition-nodensity": {"head_draws": True, "density": 0.0, "edges": 1.0},
                "acquisition-cells": {"head_draws": True, "density": 1.0, "edges": 0.0}}
METRICS = ("edist", "edist_validation", "edist_test", "target_auroc", "graph_auprc")
#: the pools of candidate experiments: paper-synthetic's drugs, knockout-screen's genes
POOLS = ("drugs", "knockouts")
#: what the knockout pool scores (its targets are known: no target AUROC; no halves)
KNOCKOUT_METRICS = ("edist", "graph_auprc")
#: (start, batch) of each pool when not given
POOL_SIZES = {"drugs": (8, 8), "knockouts": (4, 4)}
#: strategies run when none are given, per pool
POOL_STRATEGIES = {"drugs": DEFAULT_STRATEGIES, "knockouts": KNOCKOUT_STRATEGIES}
#: share of knockout-screen's genes whose knockouts are the test (never in the pool)
KNOCKOUT_TEST_SHARE = 0.25
#: the row strategy ``add_validated`` writes
VALIDATED = "acquisition-validated"
#: the row strategy ``add_random_mean`` writes
RANDOM_MEAN = "random-mean"
#: columns of ``run_design_benchmark``'s rows, in order
COLUMNS = ("sim", "seed", "strategy", "round", "n_perturbations", "metric", "value",
           "fit_seconds")


def kcenter(features: pd.DataFrame, chosen, k: int) -> list[str]:
    """Greedy k-center: ``k`` rows of ``features`` (index: names), each the remaining row
    farthest (Euclidean) from its nearest row in ``chosen`` + the rows picked before it; ties
    go to the earlier row; with nothing chosen the first pick is the first row. No
    standardisation here (the caller standardises)."""
    names = [str(n) for n in features.index]
    X = features.to_numpy(dtype=np.float64)
    have = [names.index(str(c)) for c in chosen]
    left = [i for i in range(len(names)) if i not in have]
    if k > len(left):
        raise ValueError(f"k-center: {k} to pick but only {len(left)} left")
    near = (np.full(len(names), np.inf) if not have else
            np.min(np.linalg.norm(X[:, None] - X[have][None], axis=2), axis=1))
    picks = []
    for _ in range(k):
        i = max(left, key=lambda j: (near[j], -j))  # farthest; ties: the earlier row
        picks.append(names[i])
        left.remove(i)
        near = np.minimum(near, np.linalg.norm(X - X[i], axis=1))
    return picks


def standardise(features: pd.DataFrame) -> pd.DataFrame:
    """Z-scores per column (ddof 0); a constant column becomes 0."""
    sd = features.std(ddof=0).replace(0.0, 1.0)
    return (features - features.mean()) / sd


def acquisition_batch(ranked: pd.DataFrame, k: int) -> list[str]:
    """The first ``k`` distinct candidates in ``design.rank``'s order (a perturbation ranks
    where its best experiment ranks)."""
    order = ranked.sort_values("rank")["candidate"].astype(str)
    return list(dict.fromkeys(order))[:k]


def start_set(pool: list[str], start: int, seed: int) -> list[str]:
    """``start`` perturbations of ``pool`` drawn by ``default_rng([seed, 0])``, in pool order."""
    idx = np.random.default_rng([seed, 0]).choice(len(pool), size=start, replace=False)
    return [pool[i] for i in sorted(idx)]


def random_batch(remaining: list[str], k: int, seed: int, round_: int,
                 draw: int = 0) -> list[str]:
    """``k`` of ``remaining`` drawn by ``default_rng([seed, round_, 1])`` (``draw`` 0, the
    ``random`` strategy) or ``default_rng([seed, round_, 1, draw])`` (``random-<draw>``)."""
    rng = np.random.default_rng([seed, round_, 1] + ([draw] if draw else []))
    idx = rng.choice(len(remaining), size=k, replace=False)
    return [remaining[i] for i in idx]


def random_draw(strategy: str) -> int | None:
    """0 for ``random``, j for ``random-j``, None for any other strategy."""
    if strategy == "random":
        return 0
    head, _, j = strategy.partition("-")
    return int(j) if head == "random" and j.isdigit() else None


def validation_split(ood: list[str], seed: int) -> tuple[list[str], list[str]]:
    """(validation, test): the first half of ``default_rng([seed, 3]).permutation`` of the
    ``full_ood`` perturbations, and the rest (each in ``ood`` order)."""
    perm = np.random.default_rng([seed, 3]).permutation(len(ood))
    half = set(perm[: len(ood) // 2].tolist())
    return ([p for i, p in enumerate(ood) if i in half],
            [p for i, p in enumerate(ood) if i not in half])


def add_validated(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``results`` plus, per (sim, seed), the ``_auc`` rows of the acquisition variant with
    the smallest ``edist_validation_auc`` copied as strategy ``VALIDATED`` (ties: the first
    in ``STRATEGIES`` order; nothing when no acquisition variant has that area), and the
    choices: one row per (sim, seed) with ``chosen`` and every variant's validation area."""
    auc = results[results["metric"] == "edist_validation_auc"]
    variants = [s for s in STRATEGIES if s in ACQUISITIONS]
    add, choices = [], []
    for (sim, seed), g in auc.groupby(["sim", "seed"], sort=True):
        area = {s: float(v) for s, v in zip(g["strategy"], g["value"], strict=True)
                if s in ACQUISITIONS and np.isfinite(v)}
        if not area:
            continue
        chosen = min((s for s in variants if s in area), key=lambda s: area[s])
        rows = results[(results["sim"] == sim) & (results["seed"] == seed)
                       & (results["strategy"] == chosen)
                       & results["metric"].astype(str).str.endswith("_auc")]
        add.append(rows.assign(strategy=VALIDATED))
        choices.append({"sim": sim, "seed": seed, "chosen": chosen,
                        **{f"edist_validation_auc[{s}]": area[s] for s in area}})
    out = pd.concat([results, *add], ignore_index=True) if add else results
    return out, pd.DataFrame(choices)


def add_random_mean(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` plus, per (sim, seed, metric) of the ``_auc`` rows, the mean over every
    random draw run (``random``, ``random-j``) as strategy ``RANDOM_MEAN`` (``fit_seconds``
    their mean too); nothing unless some (sim, seed) has two or more draws."""
    auc = results[results["metric"].astype(str).str.endswith("_auc")
                  & results["strategy"].map(lambda s: random_draw(s) is not None)]
    if not (auc.groupby(["sim", "seed"])["strategy"].nunique() >= 2).any():
        return results
    mean = (auc.groupby(["sim", "seed", "metric"], sort=False)[["value", "fit_seconds"]]
            .mean().reset_index())
    na = pd.array([pd.NA] * len(mean), dtype="Int64")  # typed: pandas warns on all-NA objects
    mean = mean.assign(strategy=RANDOM_MEAN, round=na, n_perturbations=na)
    return pd.concat([results, mean[list(results.columns)]], ignore_index=True)


def area_under_curve(values, rounds: int) -> float:
    """Trapezoid over rounds 0 … rounds (unit spacing), divided by ``rounds``."""
    v = np.asarray(values, dtype=np.float64)
    return float(((v[1:] + v[:-1]) / 2).sum() / rounds)


def _job_key(**kw) -> dict:
    return {"protocol": "design", **kw, "causalpert": __version__}


def _key_hash(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=repr).encode()).hexdigest()


def _job_tag(sim: str, pool: str) -> str:
    """The (sim, pool) part of job file names: ``linear`` (drugs), ``linear-knockouts``."""
    return sim if pool == "drugs" else f"{sim}-{pool}"


def _job_file(out: Path, sim: str, seed: int, strategy: str, round_: int) -> Path:
    return out / "jobs" / f"design-{sim}-seed{seed}-{strategy}-round{round_}.json"


def _same_fit(out: Path, sim: str, seed: int, key: dict, chosen: list[str]) -> dict | None:
    """A finished job of another strategy whose model was fitted on the same set of
    perturbations with the same settings (its key but for strategy, round and acquisition
    options): its scores are this set's (the fit is seeded), so a strategy that needs no
    model to choose with (random, k-center) reuses them instead of refitting."""
    def fit_key(k: dict) -> dict:
        return {n: v for n, v in k.items() if n not in ("strategy", "round", "acquisition")}

    want, chosen_set = _key_hash(fit_key(key)), sorted(chosen)
    for path in sorted((out / "jobs").glob(f"design-{sim}-seed{seed}-*-round*.json")):
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (isinstance(saved, dict) and not saved.get("failed")
                and isinstance(saved.get("key"), dict)
                and _key_hash(fit_key(saved["key"])) == want
                and sorted(saved.get("chosen") or []) == chosen_set):
            return saved
    return None


def _load_job(path: Path, key: dict, chosen: list[str]) -> dict | None:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(saved, dict) or saved.get("key_hash") != _key_hash(key)
            or saved.get("chosen") != chosen):
        return None
    return saved


@dataclass
class _Pool:
    """One pool's data and rules: ``train`` holds control + every pool item's cells (an item's
    cells are those whose ``perturbation`` is its name); ``candidates(remaining)`` is what
    ``design.rank`` ranks; ``score(ens)`` the round's scores, one per ``metrics``."""

    pool: list[str]
    train: object
    fit_kwargs: dict
    doses: list[float]
    metrics: tuple[str, ...]
    candidates: Callable[[list[str]], object]
    score: Callable[[object], dict]
    zfeats: pd.DataFrame | None = None


def _drug_pool(sim: str, seed: int, design) -> _Pool:
    """paper-synthetic: the 40 training drugs, scored on the 20 ``full_ood`` ones."""
    pdata = paper_synthetic(sim=sim, seed=seed, design=design)
    pool = [str(p) for p in pdata.target_sets["id"]]
    train, test = pdata.train, pdata.tests["full_ood"]
    ood = [str(p) for p in pdata.target_sets["full_ood"]]
    halves = dict(zip(("edist_validation", "edist_test"), validation_split(ood, seed),
                      strict=True))
    feats = train.uns["perturbation_features"].loc[pool]
    doses = sorted(float(x) for x in train.obs.loc[train.obs["perturbation"] != "control",
                                                   "dose"].unique())

    def score(ens) -> dict:
        pred = evaluate_prediction(ens, test, pdata.x_control, split="full_ood",
                                   metrics=("edist",), seed=seed)
        scores = {"edist": float(np.mean([r["value"] for r in pred]))}
        for name, perts in halves.items():
            scores[name] = float(np.mean([r["value"] for r in pred
                                          if r["context"].rsplit("@", 1)[0] in perts]))
        tgt = evaluate_targets(ens.target_scores(ood), pdata.truth_targets, split="full_ood")
        scores["target_auroc"] = float(next(r["value"] for r in tgt
                                            if r["metric"] == "target_auroc"))
        scores["graph_auprc"] = float(evaluate_graph(ens.graph(), pdata.true_graph)[0]["value"])
        return scores

    return _Pool(pool, train, pdata.fit_kwargs, doses, METRICS,
                 lambda remaining: feats.loc[remaining], score, standardise(feats))


def knockout_split(genes: list[str], seed: int) -> tuple[list[str], list[str]]:
    """(pool, test) of the knockout pool: the first ``KNOCKOUT_TEST_SHARE`` of
    ``default_rng([seed, 3]).permutation`` of the genes is the test, the rest the pool (each in
    gene order)."""
    perm = np.random.default_rng([seed, 3]).permutation(len(genes))
    test = set(perm[: round(KNOCKOUT_TEST_SHARE * len(genes))].tolist())
    return ([g for i, g in enumerate(genes) if i not in test],
            [g for i, g in enumerate(genes) if i in test])


def _knockout_pool(sim: str, seed: int, design) -> _Pool:
    """knockout-screen: 30 genes' knockouts to choose from, 10 others' as the test."""
    from ..data.prepare import dense_matrix
    from ..data.simulate import simulate

    adata = simulate("knockout-screen", sim=sim, seed=seed, design=design)
    genes = [str(g) for g in adata.var_names]
    pool, held = knockout_split(genes, seed)
    labels = adata.obs["perturbation"].astype(str)
    train = adata[~labels.isin(held).to_numpy()].copy()
    test = adata[labels.isin(held).to_numpy()].copy()
    x_control = dense_matrix(adata[(labels == "control").to_numpy()])
    true_graph = np.asarray(adata.uns["truth"]["adjacency"])

    def score(ens) -> dict:
        pred = evaluate_prediction(ens, test, x_control, split="knockouts", metrics=("edist",),
                                   seed=seed)
        return {"edist": float(np.mean([r["value"] for r in pred])),
                "graph_auprc": float(evaluate_graph(ens.graph(), true_graph)[0]["value"])}

    kw = {"perturbation_key": "perturbation", "dose_key": None, "control": "control"}
    return _Pool(pool, train, kw, [1.0], KNOCKOUT_METRICS, list, score)


def run_design_benchmark(*, sim: str = "linear", seed: int = 0,
                         strategies=None, start: int | None = None,
                         rounds: int = 4, batch: int | None = None, members: int = 3,
                         gim_options: dict | None = None, pool: str = "drugs",
                         out=None, progress: bool | None = None, design=None,
                         on_job: Callable[[str, int, bool], None] | None = None,
                         ) -> pd.DataFrame:
    """Run protocol ``design`` for one (sim, seed); the rules: the module docstring.

    Args:
        sim: ground truth, ``"linear"`` or ``"mlp"``.
        seed: data seed, and the seed of the start set, the random batches, the ensemble and
            its predictions.
        strategies: any of ``STRATEGIES`` (default ``DEFAULT_STRATEGIES``, for the knockout
            pool ``KNOCKOUT_STRATEGIES``).
        start, rounds, batch: start-set size, rounds after it, perturbations added per round
            (start + rounds · batch ≤ pool size; start and batch default to the pool's
            ``POOL_SIZES``).
        members: ensemble members K ≥ 2 (the acquisition needs their disagreement).
        gim_options: extra ``GIM`` options (e.g. ``{"steps": 500, "refit_steps": 150}``).
        out: directory for the resumable job files (None: nothing written).
        progress: GIM fit progress bars (default: off).
        pool: ``"drugs"`` (paper-synthetic) or ``"knockouts"`` (knockout-screen; the module
            docstring).
        design: ``SyntheticDesign`` sizes (tests only; the protocol uses the defaults).
        on_job: called ``on_job(strategy, round, reused)`` after each (strategy, round).

    Returns:
        DataFrame with ``COLUMNS``: per (strategy, round, metric) one row (``round`` 0 …
        rounds, ``n_perturbations`` chosen so far, ``fit_seconds`` of that round's ensemble
        fit), then per (strategy, metric) one ``auc`` row (metric ``"<metric>_auc"``,
        ``round`` and ``n_perturbations`` NA, ``fit_seconds`` the strategy's total).
    """
    from ..core import SimulationDivergedError, UnstableDriftError
    from ..models import GIM, Ensemble, FitDivergedError

    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; choose one of {POOLS}")
    strategies = tuple(POOL_STRATEGIES[pool] if strategies is None else strategies)
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad or not strategies or len(set(strategies)) != len(strategies):
        raise ValueError(f"strategies must be distinct names from {STRATEGIES}, got "
                         f"{list(strategies)}")
    if pool == "knockouts" and "kcenter" in strategies:
        raise ValueError("kcenter needs perturbation features and the knockout pool has "
                         "none: drop it from strategies")
    start = POOL_SIZES[pool][0] if start is None else start
    batch = POOL_SIZES[pool][1] if batch is None else batch
    for name, v, low in (("start", start, 1), ("rounds", rounds, 1), ("batch", batch, 1),
                         ("members", members, 2)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
            raise ValueError(f"{name} must be an integer ≥ {low}, got {v!r}")
    gim_options = dict(gim_options or {})
    data = (_drug_pool if pool == "drugs" else _knockout_pool)(sim, seed, design)
    items, metrics = data.pool, data.metrics
    if start + rounds * batch > len(items):
        raise ValueError(f"start + rounds × batch = {start + rounds * batch} exceeds the pool "
                         f"of {len(items)} candidate perturbations")
    tag = _job_tag(sim, pool)
    labels = data.train.obs["perturbation"].astype(str).to_numpy()
    out = None if out is None else Path(out)
    first = start_set(items, start, seed)
    # sorted chosen set → (ensemble, scores, fit seconds): the last fit, the start set's and
    # the whole pool's (the sets every strategy shares) are kept
    shared = {tuple(sorted(first)), tuple(sorted(items))}
    fits: dict[tuple[str, ...], tuple] = {}

    def fit_and_score(chosen: list[str]):
        key = tuple(sorted(chosen))
        if key in fits:
            return fits[key]
        cells = data.train[np.isin(labels, ["control", *chosen])].copy()
        ens = Ensemble(GIM(causal=sim, seed=seed, **gim_options), n=members, seed=seed)
        t0 = time.perf_counter()
        try:
            ens.fit(cells, progress=bool(progress), **data.fit_kwargs)
        except (FitDivergedError, UnstableDriftError, SimulationDivergedError) as err:
            print(f"design {sim} seed {seed}: the fit on {len(chosen)} perturbations failed "
                  f"({type(err).__name__}: {err})", file=sys.stderr)
            fits[key] = (None, dict.fromkeys(metrics, float("nan")), time.perf_counter() - t0)
            return fits[key]
        seconds = time.perf_counter() - t0
        scores = data.score(ens)
        for k in [k for k in fits if k not in shared]:
            del fits[k]
        fits[key] = (ens, scores, seconds)
        return fits[key]

    rows = []
    for strategy in strategies:
        chosen = list(first)
        for r in range(rounds + 1):
            key = _job_key(sim=sim, seed=seed, strategy=strategy, round=r, start=start,
                           rounds=rounds, batch=batch, members=members,
                           gim_options=gim_options, metrics=list(metrics),
                           design=None if design is None else repr(design),
                           **({"pool": pool} if pool != "drugs" else {}),
                           **({"acquisition": ACQUISITIONS[strategy]}
                              if strategy in ACQUISITIONS else {}))
            path = None if out is None else _job_file(out, tag, seed, strategy, r)
            saved = None if path is None else _load_job(path, key, chosen)
            same = (None if saved is not None or out is None or strategy in ACQUISITIONS
                    else _same_fit(out, tag, seed, key, chosen))
            if saved is None:
                if same is not None:  # this set was fitted by another strategy's job
                    ens, scores, seconds = None, same["scores"], same["fit_seconds"]
                else:
                    ens, scores, seconds = fit_and_score(chosen)
                failed = ens is None and same is None
                nxt = None
                if r < rounds and not failed:
                    remaining = [p for p in items if p not in chosen]
                    if strategy.startswith("acquisition"):
                        from ..design import rank

                        ranked = rank(ens, data.candidates(remaining), doses=data.doses, k=batch,
                                      seed=seed, progress=False,
                                      **ACQUISITIONS[strategy])
                        nxt = acquisition_batch(ranked, batch)
                    elif (draw := random_draw(strategy)) is not None:
                        nxt = random_batch(remaining, batch, seed, r + 1, draw)
                    else:
                        nxt = kcenter(data.zfeats.loc[remaining + chosen], chosen, batch)
                saved = {"key": key, "key_hash": _key_hash(key), "chosen": list(chosen),
                         "next": nxt, "scores": scores, "fit_seconds": seconds,
                         "failed": failed}
                if path is not None:
                    with atomic_write(path) as fh:
                        fh.write(json.dumps(saved))
                reused = False
            else:
                reused = True
            rows += [{"sim": sim, "seed": seed, "strategy": strategy, "round": r,
                      "n_perturbations": len(chosen), "metric": m,
                      "value": saved["scores"][m], "fit_seconds": saved["fit_seconds"]}
                     for m in metrics]
            if on_job is not None:
                on_job(strategy, r, reused)
            if saved.get("failed"):  # no model to choose with: the strategy stops here
                break
            if r < rounds:
                chosen = chosen + list(saved["next"])
    res = pd.DataFrame(rows)
    auc = []
    for (strategy, metric), g in res.groupby(["strategy", "metric"], sort=False):
        g = g.sort_values("round")
        whole = len(g) == rounds + 1  # a failed fit ends the curve early: no area
        auc.append({"sim": sim, "seed": seed, "strategy": strategy, "round": pd.NA,
                    "n_perturbations": pd.NA, "metric": f"{metric}_auc",
                    "value": area_under_curve(g["value"], rounds) if whole else float("nan"),
                    "fit_seconds": float(g["fit_seconds"].sum())})
    res = pd.concat([res, pd.DataFrame(auc)], ignore_index=True)
    res["round"] = res["round"].astype("Int64")
    res["n_perturbations"] = res["n_perturbations"].astype("Int64")
    return res[list(COLUMNS)]


def summarise_design(results: pd.DataFrame) -> pd.DataFrame:
    """Per (sim, strategy, metric) of the ``auc`` rows: mean, sd (ddof 1; 0 for one seed) and
    n_seeds over seeds, and the paired margin of ``acquisition`` over that strategy (per seed
    acquisition − strategy; mean and sd over seeds; NaN for acquisition itself or without
    it). For ``edist_auc`` a negative margin favours the acquisition, for the others a
    positive one."""
    auc = results[results["metric"].str.endswith("_auc")]
    out = auc.groupby(["sim", "strategy", "metric"], sort=False)["value"].agg(
        mean="mean", sd="std", n_seeds="count").reset_index()
    out["sd"] = out["sd"].fillna(0.0)
    wide = auc.pivot_table(index=["sim", "metric", "seed"], columns="strategy", values="value")
    margins = []
    for _, r in out.iterrows():
        if "acquisition" not in wide.columns or r["strategy"] == "acquisition":
            margins.append((np.nan, np.nan))
            continue
        w = wide.loc[(r["sim"], r["metric"])]
        diff = (w["acquisition"] - w[r["strategy"]]).dropna()
        margins.append((diff.mean(), diff.std(ddof=1) if len(diff) > 1 else 0.0))
    out["margin_mean"] = [m for m, _ in margins]
    out["margin_sd"] = [s for _, s in margins]
    return out


def steps_options(steps: int | None) -> dict:
    """GIM options of ``--steps N``: ``steps = N``, ``refit_steps = max(1, N // 3)`` (the
    default 3,000 : 1,000 ratio); None → {} (GIM's defaults)."""
    if steps is None:
        return {}
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be an integer ≥ 1, got {steps!r}")
    return {"steps": int(steps), "refit_steps": max(1, int(steps) // 3)}


def run_design(*, out, sim: str = "linear", seeds=(0, 1, 2), members: int = 3,
               steps: int | None = None, fresh: bool = False, progress: bool | None = None,
               design=None, pool: str = "drugs", **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``run_design_benchmark`` for every seed; writes ``out/results.csv`` (all rows, with
    ``add_validated``'s), ``out/summary.csv`` (``summarise_design``), ``out/validated.csv``
    (which acquisition variant the validation half chose per seed), ``out/design_curves.png``
    (``cp.pl.design_curves``) and ``out/report/index.html`` (both), all atomically; job files
    in ``out/jobs`` (``fresh``: delete this protocol's earlier ones first). ``kw`` goes to
    ``run_design_benchmark``."""
    from .._io import atomic_path
    from .._progress import progress_bar

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tag = _job_tag(sim, pool)
    if fresh:
        for f in (out / "jobs").glob(f"design-{tag}-seed*.json"):
            f.unlink()
    seeds = list(seeds)
    n_strategies = len(tuple(kw.get("strategies")
                             or POOL_STRATEGIES.get(pool, DEFAULT_STRATEGIES)))
    n_jobs = len(seeds) * n_strategies * (kw.get("rounds", 4) + 1)
    parts, reused = [], []
    with progress_bar(f"design benchmark ({tag})", n_jobs, enabled=progress) as advance:
        def on_job(strategy, r, was_reused):
            reused.append(was_reused)
            advance(1, status=f"{strategy} round {r}" + (" (reused)" if was_reused else ""))

        for seed in seeds:
            parts.append(run_design_benchmark(sim=sim, seed=seed, members=members,
                                              gim_options=steps_options(steps), out=out,
                                              design=design, on_job=on_job, pool=pool,
                                              **kw))
    if any(reused):
        print(f"reused {sum(reused)} of {len(reused)} (strategy, round) jobs finished earlier "
              f"in {out / 'jobs'} (--fresh reruns them)", file=sys.stderr)
    results, choices = add_validated(add_random_mean(pd.concat(parts, ignore_index=True)))
    summary = summarise_design(results)
    for name, table in (("results.csv", results), ("summary.csv", summary),
                        ("validated.csv", choices)):
        with atomic_write(out / name) as fh:
            fh.write(table.to_csv(index=False))

    from ..plotting import DESIGN_PANELS, design_curves

    knockouts = pool == "knockouts"
    axes = design_curves(results, metrics=KNOCKOUT_METRICS if knockouts else DESIGN_PANELS)
    fig = axes[0].figure
    which = (f"seed {seeds[0]}" if len(seeds) == 1 else
             f"seeds {', '.join(map(str, seeds))}: mean ± sd over seeds")
    data_name = "knockout-screen" if knockouts else "paper-synthetic"
    fig.suptitle(f"design benchmark, {data_name} ({sim}), {which}", fontsize=9)
    fig.tight_layout()
    with atomic_path(out / "design_curves.png") as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    from .html_report import Section, write_report

    write_report(out / "report", title=f"causalpert design benchmark ({sim})",
                 command=f"causalpert benchmark --protocol design --sim {sim} --seeds "
                         f"{','.join(map(str, seeds))}"
                         + (" --pool knockouts" if knockouts else "") + f" --out {out}",
                 sections=[Section("curves", figure=fig, caption=(
                     "Per round: energy distance of the knockouts never in the pool (lower "
                     "is better) and graph AUPRC (higher is better) of the ensemble refitted "
                     "on the knockouts chosen so far." if knockouts else
                     "Per round: full_ood energy distance (lower is better), target AUROC of "
                     "the unseen perturbations and graph AUPRC (higher is better) of the "
                     "ensemble refitted on the perturbations chosen so far.")),
                           Section("area under each curve", table=summary, text=(
                               "Mean height over rounds; margin = acquisition − strategy, "
                               "paired by seed (negative favours the acquisition for edist, "
                               "positive for the others)."))])
    return results, summary
