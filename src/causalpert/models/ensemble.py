"""``Ensemble``: K fits of one model on bootstrap resamples, used as one ``PerturbationModel``
(method.md §7, uncertainty).

Member i (i = 0 … K−1) is a fresh model of the template's class and options with seed
``seed + i``, fitted on a bootstrap resample of the cells: within every context (one
perturbation at one dose; the control cells are one context too) its n_k cells are drawn
with replacement, n_k of them, by ``numpy.random.default_rng([seed, i])`` — or, with
``subsample=f``, round(f · n_k) of them (≥ 2) without replacement (subbagging: no cell
repeats, so statistics over pairs of cells stay unbiased). Members are fitted
through ``causalpert.executors`` (``run_local``: this process, or a pool of ``workers``
one-thread processes; ``run_ray``): a job carries the AnnData, the bootstrap indices and the
member's (class name, seed, options), and returns the fitted member's checkpoint (tensors +
JSON) from which the caller rebuilds it — models are never pickled, and a serial and a
parallel fit give the same members.

Outputs combine the members:

- ``predict``: draws from the mixture — for each (perturbation, dose), counts
  (c_0, …, c_{K−1}) ~ Multinomial(n_cells, 1/K); member i gives c_i of its predicted cells.
- ``target_probabilities`` / ``target_scores``: the mean over members (``..._sd``: their sd).
- ``graph``: the mean weight, gene × gene like every model's graph; ``edge_probability``: the
  share of members with the edge, |w_ij| > ``edge_threshold`` · max_kl |w_kl| of that member
  (0.1, the SHD threshold of ``run_known_targets``); ``graph_sd``; ``edges``: all three long.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import torch

from ..data.prepare import _check_obs_key, _doses
from .base import PREDICT_MODES, NotFittedError, PerturbationModel
from .checkpoint import CheckpointError
from .threads import torch_threads


def _context_rows(perturbation, dose) -> list[np.ndarray]:
    """Row indices of each (perturbation, dose) context, contexts in sorted order."""
    groups = pd.DataFrame({"p": np.asarray(perturbation).astype(str),
                           "d": np.asarray(dose, dtype=np.float64)}).groupby(["p", "d"]).indices
    return [groups[k] for k in sorted(groups)]


def bootstrap_indices(perturbation, dose, seed: int, member: int) -> np.ndarray:
    """Row indices [N] of one bootstrap resample: within each (perturbation, dose) context,
    as many rows as it has, drawn with replacement by ``default_rng([seed, member])``;
    contexts in sorted order, the result sorted."""
    rng = np.random.default_rng([seed, member])
    picks = [rng.choice(rows, size=len(rows), replace=True)
             for rows in _context_rows(perturbation, dose)]
    return np.sort(np.concatenate(picks))


def subsample_indices(perturbation, dose, seed: int, member: int,
                      fraction: float) -> np.ndarray:
    """Row indices of one subsample: within each (perturbation, dose) context of n rows,
    max(2, round(fraction · n)) of them (at most n) drawn without replacement by
    ``default_rng([seed, member])``; contexts in sorted order, the result sorted."""
    rng = np.random.default_rng([seed, member])
    picks = [rng.choice(rows, size=min(len(rows), max(2, round(fraction * len(rows)))),
                        replace=False) for rows in _context_rows(perturbation, dose)]
    return np.sort(np.concatenate(picks))


def _resample(adata: ad.AnnData, index, layer: str | None) -> ad.AnnData:
    """A new AnnData of the rows ``index`` (repeats allowed, fresh unique obs names)."""
    if index is None:
        return adata
    obs = adata.obs.iloc[index].copy()
    obs.index = [f"boot_{j}" for j in range(len(index))]
    X = None if adata.X is None else adata.X[index]
    layers = None if layer is None else {layer: adata.layers[layer][index]}
    return ad.AnnData(X=X, obs=obs, var=adata.var.copy(), uns=dict(adata.uns), layers=layers)


def _fit_member(job: dict) -> tuple[dict, dict]:
    """Executor job: fit one member, return its checkpoint (tensors, meta)."""
    from . import MODELS

    model = MODELS[job["model"]](seed=job["seed"], **job["options"])
    with torch_threads():
        model.fit(_resample(job["adata"], job["index"], job["fit"].get("layer")), **job["fit"])
    return model._checkpoint()


def member_seed(seed: int, member: int) -> int:
    """Member i's prediction seed from a base seed: ``SeedSequence([seed, i])``."""
    return int(np.random.SeedSequence([seed, member]).generate_state(1)[0])


class Ensemble(PerturbationModel):
    """K members of one model fitted on bootstrap resamples with seeds ``seed + i``.

    Args:
        template: an instance of a registered model (``cp.MODELS``) giving the members' class
            and options; only read (a fitted template is not used, nor changed).
        n: number of members K ≥ 1.
        seed: members get seeds ``seed + i`` and bootstrap generators ``default_rng([seed,
            i])``; default: the template's seed.
        executor: ``"local"`` or ``"ray"`` (``causalpert.executors``).
        workers: processes of the local executor (1: fit in this process).
        address: Ray cluster address (``executor="ray"``).
        bootstrap: resample cells within contexts (False: every member sees all cells).
        subsample: instead of the bootstrap, a fraction f ∈ (0, 1) of each context's cells
            drawn without replacement (0.632: as many distinct cells as a bootstrap resample
            holds on average, none repeated).
        edge_threshold: a member has edge i → j iff |w_ij| > edge_threshold · its max |w|.

    Examples:
        >>> import causalpert as cp
        >>> adata = cp.simulate("paper-synthetic", seed=0)
        >>> ens = cp.Ensemble(cp.GIM(steps=200, refit_steps=50), n=3, workers=2)
        >>> ens = ens.fit(adata[adata.obs["split"] == "train"], progress=False)
        >>> ens.edges().columns.tolist()
        ['source', 'target', 'weight', 'edge_probability', 'sd']
    """

    name = "ensemble"

    def __init__(self, template: PerturbationModel, n: int = 5, *, seed: int | None = None,
                 executor: str = "local", workers: int = 1, address: str | None = None,
                 bootstrap: bool = True, subsample: float | None = None,
                 edge_threshold: float = 0.1):
        from ..executors import EXECUTORS
        from . import MODELS

        if not isinstance(template, PerturbationModel):
            raise ValueError(f"template must be a model such as cp.GIM(...), got "
                             f"{type(template).__name__}")
        if isinstance(template, Ensemble) or MODELS.get(template.name) is not type(template):
            raise ValueError(f"template must be a registered model ({sorted(MODELS)}), got "
                             f"{type(template).__name__}")
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be an integer ≥ 1 (the number of members), got {n!r}")
        seed = template.seed if seed is None else seed
        if not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be an integer ≥ 0, got {seed!r}")
        if executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}; choose from {sorted(EXECUTORS)}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer ≥ 1, got {workers!r}")
        if address is not None and executor != "ray":
            raise ValueError("address= is for executor='ray'; the local executor takes workers=")
        if not isinstance(edge_threshold, int | float) or not 0 <= edge_threshold < 1:
            raise ValueError(f"edge_threshold must be in [0, 1) (a share of each member's "
                             f"largest edge), got {edge_threshold!r}")
        if subsample is not None and (isinstance(subsample, bool)
                                      or not isinstance(subsample, int | float)
                                      or not 0 < subsample < 1):
            raise ValueError(f"subsample must be a fraction in (0, 1) of each context's cells "
                             f"(e.g. 0.632), got {subsample!r}")
        if subsample is not None and not bootstrap:
            raise ValueError("subsample= resamples the cells; bootstrap=False fits every member "
                             "on all cells: pass one of them")
        super().__init__(seed=int(seed), n=int(n), executor=executor, workers=workers,
                         address=address, bootstrap=bool(bootstrap),
                         subsample=None if subsample is None else float(subsample),
                         edge_threshold=float(edge_threshold))
        self.template = template
        kind = type(template)
        self.has_target_scores, self.has_graph = kind.has_target_scores, kind.has_graph
        self.uses_intended_targets = kind.uses_intended_targets
        self.accepts_any_perturbation = kind.accepts_any_perturbation
        self.members_: list[PerturbationModel] | None = None

    # ---------------------------------------------------------------- fit
    def fit(self, adata: ad.AnnData, *, perturbation_key: str = "perturbation",
            dose_key: str | None = "dose", control: str = "control",
            features: pd.DataFrame | None = None, layer: str | None = None,
            progress: bool | None = None, featurizer=None,
            intended_targets: dict | None = None) -> Ensemble:
        """Fit the K members (arguments as ``PerturbationModel.fit``), in parallel through the
        executor; each member's numbers depend only on (seed, i), not on ``workers``."""
        from ..executors import get_executor

        if adata.isbacked:
            raise ValueError("the ensemble resamples cells in memory: pass adata.to_memory() "
                             "(a backed AnnData cannot be bootstrapped)")
        _check_obs_key(adata, perturbation_key, "perturbation_key")
        if dose_key is not None:
            _check_obs_key(adata, dose_key, "dose_key")
        pert = adata.obs[perturbation_key].astype(str).to_numpy()
        dose = _doses(adata, dose_key, pert == control)
        o = self.options
        fit_kw = {"perturbation_key": perturbation_key, "dose_key": dose_key,
                  "control": control, "features": features, "layer": layer,
                  "progress": progress, "featurizer": featurizer,
                  "intended_targets": intended_targets}
        jobs = [{"model": self.template.name, "seed": self.seed + i,
                 "options": self.template.options, "adata": adata, "fit": fit_kw,
                 "index": self._member_rows(pert, dose, i)}
                for i in range(o["n"])]
        run = get_executor(o["executor"])
        states = run(_fit_member, jobs, workers=o["workers"], address=o["address"])
        self._set_members(states)
        return self

    def _set_members(self, states: list[tuple[dict, dict]], path="checkpoint") -> None:
        """Members from their checkpoints (tensors, meta)."""
        members = [PerturbationModel._from_checkpoint(dict(t), m, path) for t, m in states]
        self.members_ = members
        first = members[0]
        self.genes_, self.control_label_ = first.genes_, first.control_label_
        self.feature_table_, self.feature_source_ = first.feature_table_, first.feature_source_
        self.control_cells_, self.featurizer_ = first.control_cells_, first.featurizer_
        self.known_smiles_, self.intended_targets_ = first.known_smiles_, first.intended_targets_

    def _check_fitted(self) -> None:
        if self.members_ is None:
            raise NotFittedError("ensemble is not fitted: call ensemble.fit(adata) first")

    # ---------------------------------------------------------------- predict
    def predict(self, perturbations=None, doses=1.0, *, smiles=None,
                features: pd.DataFrame | None = None, n_cells: int = 500, mode: str = "map",
                seed: int | None = None, intended_targets: dict | None = None) -> ad.AnnData:
        """Cells from the members' mixture (arguments as ``PerturbationModel.predict``).

        For each (perturbation, dose): counts c ~ Multinomial(n_cells, (1/K, …, 1/K)) drawn by
        ``default_rng(seed)``; member i predicts with seed ``SeedSequence([seed, i])`` and gives
        c_i of its cells (a random subset), shuffled together. ``obs["member"]`` says which.
        Where the members report ``obs["effect_sd"]`` (GIM: the feature heads' extrapolation
        sd), the ensemble reports their root mean square per perturbation, √(mean_i sd_i²)
        over the members that gave cells.
        """
        self._check_fitted()
        if mode not in PREDICT_MODES:
            raise ValueError(f"unknown mode {mode!r}: pass mode= one of {PREDICT_MODES}")
        if isinstance(n_cells, bool) or not isinstance(n_cells, int | np.integer) or n_cells < 1:
            raise ValueError(f"n_cells must be an integer ≥ 1, got {n_cells!r}: pass the cells "
                             "wanted per perturbation")
        base = self.seed if seed is None else seed
        if isinstance(base, bool) or not isinstance(base, int | np.integer) or base < 0:
            raise ValueError(f"seed must be an integer ≥ 0, got {seed!r}")
        if perturbations is None and smiles is None:
            raise ValueError("pass the perturbations to predict (names) or smiles=")
        if perturbations is not None:
            perturbations = list(perturbations)
        elif isinstance(smiles, str):
            smiles = [smiles]
        else:
            smiles = list(smiles)
        P = len(perturbations if perturbations is not None else smiles)
        if P == 0:
            raise ValueError("no perturbations to predict: pass at least one name (or SMILES)")
        rng = np.random.default_rng(base)
        K, d = len(self.members_), len(self.genes_)
        counts = rng.multinomial(n_cells, np.full(K, 1.0 / K), size=P)  # [P, K]
        X = np.empty((P, n_cells, d), dtype=np.float32)
        who = np.empty((P, n_cells), dtype=np.int64)
        fill = np.zeros(P, dtype=np.int64)
        labels = doses_out = None
        head_sd = []  # per member that gave cells: its effect_sd per perturbation
        for i, member in enumerate(self.members_):
            m = int(counts[:, i].max())
            if m == 0:
                continue
            out = member.predict(perturbations, doses, smiles=smiles, features=features,
                                 n_cells=m, mode=mode, seed=member_seed(base, i),
                                 intended_targets=intended_targets)
            Xi = np.asarray(out.X, dtype=np.float32).reshape(P, m, d)
            if labels is None:
                labels = out.obs["perturbation"].astype(str).to_numpy()[::m]
                doses_out = out.obs["dose"].to_numpy(dtype=np.float64)[::m]
            if "effect_sd" in out.obs:
                head_sd.append(out.obs["effect_sd"].to_numpy(dtype=np.float64)[::m])
            for p, c in enumerate(counts[:, i]):
                pick = rng.choice(m, size=c, replace=False)  # a random c of the member's m
                X[p, fill[p]:fill[p] + c], who[p, fill[p]:fill[p] + c] = Xi[p, pick], i
                fill[p] += c
        for p in range(P):  # members interleaved, not in blocks
            order = rng.permutation(n_cells)
            X[p], who[p] = X[p, order], who[p, order]
        obs = pd.DataFrame({"perturbation": pd.Categorical(np.repeat(labels, n_cells)),
                            "dose": np.repeat(doses_out, n_cells), "member": who.reshape(-1)},
                           index=[f"pred_{i}" for i in range(P * n_cells)])
        if head_sd:  # members share one class and options: all report it or none does
            obs["effect_sd"] = np.repeat(np.sqrt(np.mean(np.square(head_sd), axis=0)), n_cells)
        return ad.AnnData(X=X.reshape(-1, d), obs=obs, var=pd.DataFrame(index=list(self.genes_)))

    def _member_rows(self, pert, dose, i: int) -> np.ndarray | None:
        """Rows member i is fitted on (None: all of them)."""
        o = self.options
        if not o["bootstrap"]:
            return None
        if o["subsample"] is not None:
            return subsample_indices(pert, dose, self.seed, i, o["subsample"])
        return bootstrap_indices(pert, dose, self.seed, i)

    # ---------------------------------------------------------------- summaries
    def _stack(self, method: str, *args, **kw) -> tuple[np.ndarray, pd.DataFrame]:
        self._check_fitted()
        frames = [getattr(m, method)(*args, **kw) for m in self.members_]
        return np.stack([f.to_numpy(dtype=np.float64) for f in frames]), frames[0]

    @staticmethod
    def _frame(values: np.ndarray, like: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(values, index=like.index, columns=like.columns)

    @staticmethod
    def _sd(S: np.ndarray) -> np.ndarray:
        """Sd over members (axis 0, ddof = 1; 0 for one member)."""
        return S.std(0, ddof=1) if len(S) > 1 else np.zeros(S.shape[1:])

    def target_probabilities(self, perturbations=None, *, smiles=None,
                             features: pd.DataFrame | None = None) -> pd.DataFrame:
        """Mean over members of their target probabilities (perturbation × gene)."""
        S, like = self._stack("target_probabilities", perturbations, smiles=smiles,
                              features=features)
        return self._frame(S.mean(0), like)

    def target_probabilities_sd(self, perturbations=None, *, smiles=None,
                                features: pd.DataFrame | None = None) -> pd.DataFrame:
        """Sd over members of their target probabilities (ddof = 1; 0 for one member)."""
        return self.target_probabilities_stats(perturbations, smiles=smiles,
                                               features=features)[1]

    def target_probabilities_stats(self, perturbations=None, *, smiles=None,
                                   features: pd.DataFrame | None = None,
                                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(mean, sd) over members of their target probabilities from one pass over the
        members (each predicts the candidates once; ``design.rank`` needs both)."""
        S, like = self._stack("target_probabilities", perturbations, smiles=smiles,
                              features=features)
        return self._frame(S.mean(0), like), self._frame(self._sd(S), like)

    def target_scores(self, perturbations=None, *, smiles=None,
                      features: pd.DataFrame | None = None) -> pd.DataFrame:
        """Mean over members of their target scores (what the benchmark ranks by)."""
        S, like = self._stack("target_scores", perturbations, smiles=smiles, features=features)
        return self._frame(S.mean(0), like)

    def graph(self) -> pd.DataFrame:
        """Mean edge weight over members, gene × gene, (i, j) = edge i → j."""
        S, like = self._stack("graph")
        return self._frame(S.mean(0), like)

    def graph_sd(self) -> pd.DataFrame:
        """Sd over members of each edge weight (ddof = 1; 0 for one member)."""
        S, like = self._stack("graph")
        return self._frame(self._sd(S), like)

    def edge_probability(self) -> pd.DataFrame:
        """Share of members with edge i → j: |w_ij| > edge_threshold · max |w| of the member
        (diagonal 0)."""
        S, like = self._stack("graph")
        A = np.abs(S) * (1 - np.eye(S.shape[1]))
        top = A.reshape(len(A), -1).max(1)[:, None, None]
        return self._frame((A > self.options["edge_threshold"] * top).mean(0), like)

    def edges(self) -> pd.DataFrame:
        """Long table of the off-diagonal edges: source, target, weight (mean),
        edge_probability, sd."""
        W, P, sd = self.graph(), self.edge_probability(), self.graph_sd()
        src, tgt = np.nonzero(~np.eye(len(W), dtype=bool))
        genes = np.asarray(W.index)
        return pd.DataFrame({"source": genes[src], "target": genes[tgt],
                             "weight": W.to_numpy()[src, tgt],
                             "edge_probability": P.to_numpy()[src, tgt],
                             "sd": sd.to_numpy()[src, tgt]})

    def diagnostics(self) -> dict:
        """Members' numeric diagnostics averaged, plus ``members`` (K)."""
        self._check_fitted()
        rows = [m.diagnostics() for m in self.members_ if hasattr(m, "diagnostics")]
        keys = [k for k, v in (rows[0] if rows else {}).items() if isinstance(v, int | float)]
        out = {k: float(np.mean([r[k] for r in rows if isinstance(r.get(k), int | float)]))
               for k in keys}
        return {**out, "members": len(self.members_)}

    # ---------------------------------------------------------------- persistence
    def _checkpoint(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Every member's tensors under ``member<i>.``, their metadata in ``members``."""
        self._check_fitted()
        tensors, metas = {}, []
        for i, member in enumerate(self.members_):
            t, meta = member._checkpoint()
            tensors |= {f"member{i}.{k}": v for k, v in t.items()}
            metas.append(meta)
        t = self.template
        meta = {"model": self.name, "seed": self.seed, "options": self.options,
                "template": {"model": t.name, "seed": t.seed, "options": t.options},
                "members": metas}
        return tensors, meta

    @classmethod
    def _from_checkpoint(cls, tensors, meta, path="checkpoint") -> Ensemble:
        from . import MODELS

        try:
            spec = meta["template"]
            template = MODELS[spec["model"]](seed=spec["seed"], **spec["options"])
            ens = cls(template, seed=meta["seed"], **meta["options"])
            states = []
            for i, m in enumerate(meta["members"]):
                prefix = f"member{i}."
                states.append(({k[len(prefix):]: v for k, v in tensors.items()
                                if k.startswith(prefix)}, m))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"checkpoint {path} is corrupt or from another version "
                                  f"({type(exc).__name__}: {exc}): re-save the model") from None
        if not states:
            raise CheckpointError(f"checkpoint {path} holds an ensemble without members")
        ens._set_members(states, path)
        return ens
