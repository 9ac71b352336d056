"""Benchmark runner: fit every (method, seed) on a protocol, score it, write tidy results.

Outputs in ``out``: ``results.csv`` / ``results.json`` (records {protocol, method, seed, split,
context, metric, value}), ``summary.csv`` (per method, split, metric: contexts averaged per
seed, then mean ± sd over seeds), and ``jobs/<method>-seed<seed>.json`` (each finished job's
rows and key, so an interrupted run resumes) — all written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from .._io import atomic_write, stale_temps
from .evaluate import (
    evaluate_graph,
    evaluate_prediction,
    evaluate_target_ranks,
    evaluate_targets,
)
from .protocols import SYNTHETIC_PROTOCOLS, load_protocol

#: method name → (registered model, options). Ablations are variants of ``gim``.
METHODS: dict[str, tuple[str, dict]] = {
    "gim": ("gim", {}),
    "gim-mlp": ("gim", {"causal": "mlp"}),
    "gim-joint": ("gim", {"variant": "joint"}),
    "gim-exact": ("gim", {"mask_estimator": "exact"}),
    "gim-joint-mlphead": ("gim", {"variant": "joint", "head": "mlp"}),
    "gim-vstat": ("gim", {"estimator": "v"}),
    # V-statistic + the exact-mean term at weight 10 in both stages: chosen on Norman 2019's
    # id split among 1, 10, 100 (bench/select_by_id.py), never on its test pairs
    "gim-moments": ("gim", {"estimator": "v", "moment_weight": 10.0}),
    "gim-norefit": ("gim", {"refit_steps": 0}),
    "gim-refit-l1": ("gim", {"refit_graph_l1": True}),
    # the refit frees every edge (refit_support = 0): the default before issue 14's fix
    "gim-refit-all": ("gim", {"refit_support": 0.0}),
    "gim-ridge-head": ("gim", {"feature_head": "ridge"}),  # the heads before issue 13
    "gim-uncalibrated": ("gim", {"calibrated_targets": False}),
    # targets re-selected after the refit with the edge L1 off, then refitted (session 13):
    # drops the children of true targets that stage 1's shrunk edges made look like targets
    "gim-reselect": ("gim", {"reselect_steps": 1000}),
    "gim-activity": ("gim", {"activity": True}),
    "gim-gaussian": ("gim", {"sampler": "gaussian"}),
    "gim-nocal": ("gim", {"sampler": "gaussian", "noise_calibration": False}),
    # cp.Ensemble of 3 default GIMs (bootstrap within contexts, seeds seed + i): predictions
    # from the members' mixture, target scores averaged (issue 11: a never-knocked-out gene's
    # out-edges are not identified; the mixture spreads over the networks the members find)
    "gim-ensemble": ("gim", {"members": 3}),
    # the same with subsamples of 63.2 % of each context's cells, without replacement (session
    # 12): a bootstrap's repeated cells bias the KDS's pair sums in every member's fit
    "gim-subbag": ("gim", {"members": 3, "subsample": 0.632}),
    "control": ("control", {}),
    "additive": ("additive", {}),
    "mlp": ("mlp", {}),
    "free-causal": ("free-causal", {}),
    "de": ("de", {}),
    "oracle": ("oracle", {}),
    "mean-ko": ("mean-shift", {}),
    # the field's own tools, each in its own venv (causalpert peers install NAME)
    "cellflow": ("peer", {"peer": "cellflow"}),
    "state": ("peer", {"peer": "state"}),
    "stadion": ("peer", {"peer": "stadion"}),
}


def make_model(method: str, *, seed: int, sim: str | None = None, **overrides):
    """A fresh model for a method name of ``METHODS`` (``gim`` follows the simulated truth's
    kind when ``sim`` is given and the method does not fix ``causal``); the option
    ``members=K`` makes it a ``cp.Ensemble`` of K such models, fitted one after another
    (``subsample=f``: on subsamples instead of bootstrap resamples)."""
    from ..models import MODELS, Ensemble

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(METHODS)}")
    name, options = METHODS[method]
    if name not in MODELS:
        raise ValueError(f"model {name!r} of method {method!r} is not available")
    options = {**options, **overrides}
    if name == "gim" and sim is not None:
        options.setdefault("causal", sim)
    members = options.pop("members", None)
    subsample = options.pop("subsample", None)
    model = MODELS[name](seed=seed, **options)
    return model if members is None else Ensemble(model, n=members, subsample=subsample)


def run_one(protocol: str, sim: str, method: str, seed: int, *, progress=False, design=None,
            overrides: dict | None = None, data: str | None = None,
            cell_line: str = "A549") -> list[dict]:
    """Fit one (method, seed) and return its tidy rows.

    Predictions are scored on every test split of a fit to ``train``; targets and graph on
    the same fit, or, where the protocol has ``fit_all`` (Sachs), on a second fit to all cells.
    """
    pdata = load_protocol(protocol, sim=sim, seed=seed, design=design, data=data,
                          cell_line=cell_line)
    options = (overrides or {}).get(method, {})
    model = make_model(method, seed=seed, sim=sim, **options)
    t0 = time.perf_counter()
    model.fit(pdata.train, progress=progress, **pdata.fit_kwargs)
    rows = [{"split": "train", "context": "all", "metric": "fit_seconds",
             "value": time.perf_counter() - t0}]
    predicts = method != "de"
    if predicts:
        rows += _score_splits(model, pdata.tests, pdata, seed)
    diagnostics = model
    if predicts and (model.uses_intended_targets or model.accepts_any_perturbation):
        for fold in pdata.folds:  # e.g. a knockout never seen, from its intended gene
            fm = make_model(method, seed=seed, sim=sim, **options)
            t0 = time.perf_counter()
            fm.fit(fold.train, progress=progress, **pdata.fit_kwargs)
            rows.append({"split": "train", "context": fold.label, "metric": "fold_fit_seconds",
                         "value": time.perf_counter() - t0})
            rows += _score_splits(fm, fold.tests, pdata, seed)
    if pdata.fit_all is not None and (model.has_target_scores or model.has_graph):
        model = make_model(method, seed=seed, sim=sim, **options)
        t0 = time.perf_counter()
        model.fit(pdata.fit_all, progress=progress,
                  **(pdata.fit_all_kwargs or pdata.fit_kwargs))
        rows.append({"split": "train", "context": "all", "metric": "fit_all_seconds",
                     "value": time.perf_counter() - t0})
    if model.has_target_scores and pdata.truth_targets is not None:
        for split, perts in pdata.target_sets.items():
            try:
                scores = model.target_scores(perts)
            except ValueError:  # e.g. `de` cannot score perturbations it never saw
                continue
            rows += evaluate_targets(scores, pdata.truth_targets, split=split)
            if pdata.intended_targets is not None:
                rows += evaluate_target_ranks(scores, pdata.intended_targets, split=split)
    if model.has_graph and pdata.true_graph is not None:
        rows += evaluate_graph(model.graph(), pdata.true_graph)
    model = diagnostics  # the diagnostics of the fit to ``train``
    if hasattr(model, "diagnostics"):
        for k, v in model.diagnostics().items():
            if isinstance(v, float | int):
                rows.append({"split": "train", "context": "all", "metric": f"diag_{k}",
                             "value": float(v)})
    for r in rows:
        r.update(protocol=f"{protocol}-{sim}" if protocol in SYNTHETIC_PROTOCOLS else protocol,
                 method=method, seed=seed)
    return rows


def _score_splits(model, tests: dict, pdata, seed: int) -> list[dict]:
    """Prediction rows of every test split a model can predict; a split of perturbations it
    cannot predict (e.g. ``additive`` with one-hot features on a new perturbation) gives no
    rows, so its table cell stays empty."""
    rows = []
    for split, test in tests.items():
        try:
            rows += evaluate_prediction(model, test, pdata.x_control, split=split, seed=seed,
                                        top_genes=pdata.top_genes.get(split))
        except ValueError as err:
            if not str(err).startswith("unknown perturbation"):
                raise
    return rows


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Per (method, split, metric): mean over contexts per seed, then mean ± sd over seeds."""
    per_seed = (results.groupby(["protocol", "method", "split", "metric", "seed"])["value"]
                .mean().reset_index())
    out = per_seed.groupby(["protocol", "method", "split", "metric"])["value"].agg(
        mean="mean", sd="std", n_seeds="count").reset_index()
    out["sd"] = out["sd"].fillna(0.0)
    return out


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path) as fh:
        fh.write(text)


def job_key(job) -> dict:
    """What a job's rows depend on: protocol, sim, method, seed, the method's overrides, the
    design, the data source (a file by its path) and the causalpert version. Code changed
    without a new version is not part of it: run with ``fresh=True`` after such changes."""
    protocol, sim, method, seed, design, overrides, source = job
    if dataclasses.is_dataclass(design):
        design = dataclasses.asdict(design)
    return {"protocol": protocol, "sim": sim, "method": method, "seed": seed,
            "overrides": (overrides or {}).get(method, {}), "design": design, "data": source,
            "causalpert": __version__}


def _key_hash(key: dict) -> str:
    text = json.dumps(key, sort_keys=True, default=repr)  # repr: an unusual option never matches
    return hashlib.sha256(text.encode()).hexdigest()


def _job_file(out: Path, job) -> Path:
    return out / "jobs" / f"{job[2]}-seed{job[3]}.json"


def _saved_rows(out: Path, job) -> list[dict] | None:
    """The rows of an earlier run of ``job`` in ``out``, or None (no file, unreadable, or
    written for another job key)."""
    try:
        saved = json.loads(_job_file(out, job).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("key_hash") != _key_hash(job_key(job)):
        return None
    return saved.get("rows")


def _save_rows(out: Path, job, rows: list[dict]) -> None:
    key = job_key(job)
    text = json.dumps({"key": key, "key_hash": _key_hash(key), "rows": rows},
                      default=_json_default)
    _write_text(_job_file(out, job), text)


def run_benchmark(*, protocol: str, sim: str, methods: list[str], seeds: list[int],
                  out: str | Path, workers: int = 1, progress: bool | None = None,
                  design=None, overrides: dict | None = None, executor: str = "local",
                  address: str | None = None, data: str | None = None,
                  cell_line: str = "A549", fresh: bool = False,
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every (method, seed), write results.csv/json and summary.csv into ``out``.

    Each finished job's rows go to ``out/jobs/<method>-seed<seed>.json`` as it finishes, so a
    run that stops halfway loses only its unfinished jobs: run the same call again with the
    same ``out`` and jobs with a file of the same ``job_key`` (protocol, sim, method, seed,
    its overrides, design, data, causalpert version) are reused, not rerun; the final files
    are those of an uninterrupted run. Code changes within a version are not detected:
    ``fresh=True`` deletes the earlier job files and reruns everything.

    ``overrides`` maps a method to extra model options (e.g. fewer steps in tests); ``design``
    shrinks the synthetic data (tests only; protocol runs use the full design); ``data`` and
    ``cell_line`` locate the user's file of a ``sciplex3`` run. ``executor``
    (``executors.EXECUTORS``): ``"local"`` runs in this process or a pool of ``workers``
    processes, ``"ray"`` runs one Ray task per job, on the cluster at ``address`` if given.
    Results come in job order (seeds, then methods) on every executor.
    """
    from .. import peers
    from .._progress import progress_bar
    from ..executors import get_executor

    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {sorted(METHODS)}")
        if METHODS[m][0] == "peer":  # not installed: say so before hours of other fits
            peers.python_of(METHODS[m][1]["peer"])
    run_jobs = get_executor(executor)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for f in stale_temps(out / "jobs"):  # a killed run's half-written job file
        f.unlink()
    if fresh:
        for f in (out / "jobs").glob("*.json"):
            f.unlink()
    source = {"data": None if data is None else str(data), "cell_line": cell_line}
    jobs = [(protocol, sim, m, s, design, overrides, source) for s in seeds for m in methods]
    saved = [_saved_rows(out, job) for job in jobs]
    todo = [job for job, rows in zip(jobs, saved, strict=True) if rows is None]
    if len(todo) < len(jobs):
        print(f"reusing {len(jobs) - len(todo)} of {len(jobs)} jobs finished earlier in "
              f"{out / 'jobs'} (fresh=True / --fresh reruns them)", file=sys.stderr)

    with progress_bar(f"benchmark {protocol} ({sim})", len(todo), enabled=progress) as advance:
        def done(job, rows):  # in this process, whatever the executor: one writer per file
            _save_rows(out, job, rows)
            advance(1, status=f"{job[2]} seed {job[3]} done")

        new = iter(run_jobs(_run_job, todo, workers=workers, address=address, on_done=done)
                   if todo else [])
    per_job = [next(new) if rows is None else rows for rows in saved]
    rows = [row for res in per_job for row in res]
    results = pd.DataFrame(rows)[["protocol", "method", "seed", "split", "context", "metric",
                                  "value"]]
    summary = summarise(results)
    _write_text(out / "results.csv", results.to_csv(index=False))
    _write_text(out / "results.json", json.dumps(results.to_dict(orient="records"),
                                                 default=_json_default))
    _write_text(out / "summary.csv", summary.to_csv(index=False))
    return results, summary


def _run_job(job) -> list[dict]:
    """One (method, seed); a fit that diverges or ends unstable, or a peer that fails (its log
    named on stderr), gives one ``fit_failed`` row (reported in the summary) instead of
    stopping the whole benchmark."""
    from ..core import SimulationDivergedError, UnstableDriftError
    from ..models import FitDivergedError
    from ..peers import PeerFailedError

    protocol, sim, method, seed, design, overrides, source = job
    try:
        return run_one(protocol, sim, method, seed, design=design, overrides=overrides,
                       **source)
    except (FitDivergedError, UnstableDriftError, SimulationDivergedError,
            PeerFailedError) as err:
        print(f"{method} seed {seed} failed: {type(err).__name__}: {err}", file=sys.stderr)
        name = f"{protocol}-{sim}" if protocol in SYNTHETIC_PROTOCOLS else protocol
        return [{"protocol": name, "method": method, "seed": seed, "split": "train",
                 "context": "all", "metric": "fit_failed", "value": 1.0}]


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(type(v))
