"""``PerturbationModel``: the one small interface of GIM and every baseline.

``fit(adata, ...)`` → ``predict(perturbations, doses, ...)`` (AnnData of cells) →
``target_probabilities`` / ``graph`` (DataFrames) → ``save`` / ``load`` (safetensors + JSON).
Subclasses implement ``_fit``, ``_predict`` and, where they have them, ``_target_scores`` and
``_graph``, all on tensors.
"""

from __future__ import annotations

from typing import ClassVar

import anndata as ad
import numpy as np
import pandas as pd
import torch

from ..data.contexts import Contexts
from ..data.features import resolve_features
from ..data.genetic import combination_parts, parse_genes, resolve_intended_targets
from ..data.prepare import prepare
from ..data.smiles import SmilesFeaturizer, resolve_featurizer, smiles_inputs
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .threads import torch_threads

PREDICT_MODES = ("map", "mean", "sample")


class _Request:
    """Resolved perturbations of one call: ``labels`` (as asked), the flat list of ``parts``
    (a combination ``"A+B"`` contributes one part per component), their features ``F``
    [Q, p], ``groups`` (part indices of each label) and ``genetic`` (modelled intended-gene
    indices of each part, for models that use intended targets)."""

    def __init__(self, labels, parts, F, groups, genetic):
        self.labels, self.parts, self.F = labels, parts, F
        self.groups, self.genetic = groups, genetic

    @property
    def composed(self) -> bool:
        return any(len(g) > 1 for g in self.groups)

    def part_doses(self, doses: np.ndarray) -> torch.Tensor:
        """The dose of each part [Q]: every part of a label at that label's dose."""
        return torch.as_tensor(np.concatenate([[doses[i]] * len(g)
                                               for i, g in enumerate(self.groups)]),
                               dtype=torch.float32)


def broadcast_doses(doses, n: int) -> np.ndarray:
    """One finite dose ≥ 0 per perturbation [n] from a scalar or a length-n sequence."""
    try:
        out = np.array(np.broadcast_to(np.asarray(doses, dtype=np.float64), (n,)))
    except ValueError:
        raise ValueError(f"give one dose for all or one per perturbation ({n}), got "
                         f"{np.shape(doses)}") from None
    if not np.isfinite(out).all() or (out < 0).any():
        raise ValueError(f"doses must be finite and ≥ 0, got {out.tolist()[:5]}: give doses "
                         "in the units of the training obs column")
    return out


class NotFittedError(RuntimeError):
    """The model was used before ``fit``."""


class PerturbationModel:
    """Base class. Options are keyword-only and stored in ``self.options`` (saved with the model).

    Attributes set by ``fit``: ``genes_``, ``feature_table_`` (perturbation × feature),
    ``feature_source_`` (``user``, ``uns`` or ``one-hot``), ``control_cells_`` [n0, d],
    ``featurizer_`` (a ``SmilesFeaturizer`` or None) and ``known_smiles_`` ({canonical SMILES:
    perturbation name}, from ``adata.uns["smiles"]``).
    """

    name: ClassVar[str] = "base"
    has_target_scores: ClassVar[bool] = False
    has_graph: ClassVar[bool] = False
    #: ``_predict`` also receives ``perturbations=`` (names), e.g. to use per-perturbation fits.
    predict_uses_names: ClassVar[bool] = False
    #: the model composes the parts of a combination ``"A+B"`` itself (``_predict_composed``);
    #: otherwise their mean shifts are added (``_compose_additively``)
    composes: ClassVar[bool] = False
    #: a perturbation never seen, without features, is predicted from its intended genes
    uses_intended_targets: ClassVar[bool] = False
    #: predicts any perturbation name (features unused), e.g. the ``mean-shift`` baseline
    accepts_any_perturbation: ClassVar[bool] = False

    def __init__(self, *, seed: int = 0, **options):
        self.seed = seed
        self.options = options
        self.genes_: tuple[str, ...] | None = None
        self.featurizer_: SmilesFeaturizer | None = None
        self.known_smiles_: dict[str, str] = {}
        self.intended_targets_: dict[str, tuple[str, ...]] = {}

    # ---------------------------------------------------------------- fit
    def fit(
        self,
        adata: ad.AnnData,
        *,
        perturbation_key: str = "perturbation",
        dose_key: str | None = "dose",
        control: str = "control",
        features: pd.DataFrame | None = None,
        layer: str | None = None,
        progress: bool | None = None,
        featurizer: SmilesFeaturizer | dict | None = None,
        intended_targets: dict | None = None,
    ) -> PerturbationModel:
        """Fit on all cells of ``adata`` (select a split before calling).

        Args:
            adata: cells × genes with ``obs[perturbation_key]`` and ``obs[dose_key]``.
            control: label of control cells in ``obs[perturbation_key]``.
            features: DataFrame indexed by perturbation name; None → ``adata.uns
                ["perturbation_features"]`` if present, else a one-hot code.
            layer: fit on this layer instead of ``X``.
            progress: show progress bars (default on, off with CAUSALPERT_PROGRESS=0).
            featurizer: a ``SmilesFeaturizer`` (or its dict) saved with the model so that
                ``predict(smiles=...)`` works; None → ``adata.uns["featurizer"]`` if present.
                Without a feature table it featurises ``adata.uns["smiles"]``.
            intended_targets: genetic perturbations: {perturbation: genes it is aimed at}
                (a list, or ``"A+B"``); None → ``adata.uns["intended_targets"]`` if present,
                ``{}`` → none. GIM starts a modelled intended gene as a likely target and
                predicts knockouts of modelled genes never seen in training from them.
        """
        contexts = prepare(adata, perturbation_key=perturbation_key, dose_key=dose_key,
                           control=control, layer=layer)
        perts = [p for k, p in enumerate(contexts.perturbations) if k != contexts.control]
        self.featurizer_, features, self.known_smiles_ = resolve_featurizer(
            adata, featurizer, features)
        table, source = resolve_features(adata, features, perts)
        self.feature_table_, self.feature_source_ = table, source
        self.genes_ = contexts.genes
        self.intended_targets_ = resolve_intended_targets(adata, intended_targets, perts)
        self.control_label_ = control
        self.control_cells_ = contexts.cells(contexts.control).clone()
        F = torch.zeros(contexts.n_contexts, table.shape[1])
        for k, p in enumerate(contexts.perturbations):
            if k != contexts.control:
                F[k] = torch.as_tensor(table.loc[p].to_numpy(), dtype=torch.float32)
        torch.manual_seed(self.seed)
        self._fit(contexts.with_features(F), adata=adata, progress=progress)
        return self

    def _require_perturbed(self, n: int) -> None:
        """Every model but ``control`` learns from perturbed cells: one error if ``n`` (the
        perturbed contexts, or perturbations) is 0."""
        if n == 0:
            raise ValueError(f"no perturbed cells: the {self.name} model learns from "
                             "perturbations; add cells of at least one besides control")

    def _fit(self, contexts: Contexts, *, adata: ad.AnnData, progress: bool | None) -> None:
        """Fit on ``contexts``, which ``fit`` made for this call only: a model may overwrite
        their cells (e.g. standardise in place) to save a copy of X."""
        raise NotImplementedError

    # ---------------------------------------------------------------- inputs
    def _check_fitted(self) -> None:
        if self.genes_ is None:
            raise NotFittedError(f"{self.name} model is not fitted: call model.fit(adata) first")

    def _features_for(self, perturbations, features: pd.DataFrame | None,
                      free=()) -> torch.Tensor:
        """Feature rows [P, p] for ``perturbations`` (user table first, then the fit table);
        names in ``free`` (predicted without features) get a zero row."""
        user = None
        if features is not None:
            user = features.set_axis(features.index.astype(str))
            if user.index.has_duplicates:
                raise ValueError("features index has duplicate perturbation names")
        rows = []
        for p in map(str, perturbations):
            if user is not None and p in user.index:
                rows.append(user.loc[p].to_numpy(dtype=np.float64))
            elif p in self.feature_table_.index:
                rows.append(self.feature_table_.loc[p].to_numpy(dtype=np.float64))
            elif p in free or self.accepts_any_perturbation:
                rows.append(np.zeros(self.feature_table_.shape[1]))
            else:
                hint = ("this model was fitted with one-hot features, so it can only predict "
                        "perturbations seen in fit" if self.feature_source_ == "one-hot"
                        else "pass its features with features=DataFrame(..., index=[name])")
                if self.uses_intended_targets:
                    hint += (", or its genes with intended_targets={name: [genes]} (a "
                             "modelled gene's name alone also works)")
                raise ValueError(f"unknown perturbation {p!r}: {hint}")
        F = np.stack(rows) if rows else np.zeros((0, self.feature_table_.shape[1]))
        if F.shape[1] != self.feature_table_.shape[1]:
            raise ValueError(f"features have {F.shape[1]} columns, the model was fitted with "
                             f"{self.feature_table_.shape[1]}")
        if not np.isfinite(F).all():
            raise ValueError("features contain NaN or inf")
        return torch.as_tensor(F, dtype=torch.float32)

    def _default_perturbations(self, perturbations):
        return list(self.feature_table_.index) if perturbations is None else list(perturbations)

    def _intended_genes(self, name: str, extra: dict | None) -> tuple[int, ...]:
        """Indices of the modelled genes ``name`` is aimed at: ``extra`` (given to this call),
        then the fit's intended targets, then the name itself if it is a modelled gene."""
        genes = parse_genes((extra or {}).get(name)) or self.intended_targets_.get(name, ())
        if not genes and name in self.genes_:
            genes = (name,)
        index = {g: j for j, g in enumerate(self.genes_)}
        return tuple(index[g] for g in genes if g in index)

    def _inputs(self, perturbations, smiles, features, intended=None) -> _Request:
        """Resolve names (or SMILES strings) into parts, features and intended genes."""
        if smiles is not None:
            if perturbations is not None or features is not None:
                raise ValueError("pass either perturbation names (with optional features=) or "
                                 "smiles=, not both")
            if self.featurizer_ is None:
                raise ValueError("this model was fitted without a SMILES featurizer; refit "
                                 "with fit(..., featurizer=SmilesFeaturizer()) or pass "
                                 "perturbation names")
            labels, names, F = smiles_inputs(self.featurizer_, smiles, self.known_smiles_)
            return _Request(labels, names, torch.as_tensor(F, dtype=torch.float32),
                            [[i] for i in range(len(names))], [() for _ in names])
        labels = [str(p) for p in perturbations]
        user = set() if features is None else set(map(str, features.index))
        table = set(self.feature_table_.index)

        cache: dict[str, tuple[int, ...]] = {}

        def genetic(p):  # asked up to three times per part below
            if p not in cache:
                cache[p] = (self._intended_genes(p, intended) if self.uses_intended_targets
                            else ())
            return cache[p]

        def known(p):
            return (p in user or p in table or self.accepts_any_perturbation
                    or bool(genetic(p)))

        parts, groups = [], []
        for p in labels:
            split = combination_parts(p, known) or [p]
            groups.append(list(range(len(parts), len(parts) + len(split))))
            parts += split
        free = {p for p in parts if p not in user and p not in table and genetic(p)}
        F = self._features_for(parts, features, free)
        return _Request(labels, parts, F, groups, [genetic(p) if p in free else ()
                                                    for p in parts])

    # ---------------------------------------------------------------- outputs
    def predict(
        self,
        perturbations=None,
        doses=1.0,
        *,
        smiles=None,
        features: pd.DataFrame | None = None,
        n_cells: int = 500,
        mode: str = "map",
        seed: int | None = None,
        intended_targets: dict | None = None,
    ) -> ad.AnnData:
        """Predicted cells for each (perturbation, dose) pair.

        Args:
            perturbations: names (seen in fit, or present in ``features``).
            doses: one dose per perturbation, or one dose for all.
            smiles: SMILES strings instead of names (a model fitted with a featurizer); a
                molecule seen in fit predicts as its perturbation name would.
            features: DataFrame indexed by perturbation name, needed for unseen ones.
            n_cells: cells per (perturbation, dose).
            mode: ``"map"`` (most likely intervention), ``"mean"`` (the expected intervention)
                or ``"sample"`` (a fresh intervention drawn from the intervention distribution
                per batch of cells). Models with deterministic interventions ignore it.
            seed: sampling seed (default: the model's seed).
            intended_targets: {name: genes} for genetic perturbations never seen in fit (GIM;
                the name of a modelled gene alone means "perturb that gene").

        A name ``"A+B"`` that is not itself a known perturbation is the combination of its
        parts, all at the given dose: GIM composes their interventions in the causal model
        (union of targets, shifts add, activity factors multiply); other models add the
        parts' mean shifts to the first part's cells.

        Returns:
            AnnData (P · n_cells) × genes with ``obs["perturbation"]`` (the name, or the SMILES
            string as given) and ``obs["dose"]``; GIM adds ``obs["effect_sd"]``, how far the
            prediction rests on its feature heads' extrapolation (``GIM.head_uncertainty``).
        """
        self._check_fitted()
        if perturbations is None and smiles is None:
            raise ValueError("pass the perturbations to predict (names) or smiles=")
        if mode not in PREDICT_MODES:
            raise ValueError(f"unknown mode {mode!r}: pass mode= one of {PREDICT_MODES}")
        if n_cells < 1:
            raise ValueError(f"n_cells must be ≥ 1, got {n_cells}: pass the cells wanted per "
                             "perturbation")
        req = self._inputs(perturbations, smiles, features, intended_targets)
        if not req.labels:
            raise ValueError("no perturbations to predict: pass at least one name (or SMILES)")
        perturbations = req.labels
        doses = broadcast_doses(doses, len(perturbations))
        part_doses = req.part_doses(doses)
        g = torch.Generator().manual_seed(self.seed if seed is None else seed)
        with torch.no_grad(), torch_threads():
            kw = {"perturbations": req.parts} if self.predict_uses_names else {}
            if self.uses_intended_targets:
                kw["genetic"] = req.genetic
            if req.composed and self.composes:
                X = self._predict_composed(req.F, part_doses, req.groups, n_cells, mode, g, **kw)
            else:
                X = self._predict(req.F, part_doses, n_cells, mode, g, **kw)
                if req.composed:
                    X = self._compose_additively(torch.as_tensor(X), req.groups)
        X = np.asarray(X, dtype=np.float32).reshape(-1, len(self.genes_))
        obs = pd.DataFrame({
            "perturbation": pd.Categorical(np.repeat(perturbations, n_cells)),
            "dose": np.repeat(doses, n_cells),
            **{k: np.repeat(np.asarray(v), n_cells) for k, v in self._prediction_obs(req).items()},
        }, index=[f"pred_{i}" for i in range(len(X))])
        return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=list(self.genes_)))

    def _prediction_obs(self, req) -> dict:
        """Extra ``obs`` columns of ``predict``'s cells, one value per predicted label."""
        return {}

    def _predict(self, F, doses, n_cells, mode, generator) -> torch.Tensor:
        raise NotImplementedError

    def _predict_composed(self, F, doses, groups, n_cells, mode, generator, **kw):
        raise NotImplementedError

    def _compose_additively(self, X: torch.Tensor, groups) -> torch.Tensor:
        """Cells of combinations from their parts' cells X [Q, n, d]: the first part's cells
        plus the other parts' mean shifts, mean(X_q) − μ₀ (the additive rule)."""
        mu0 = self.control_cells_.double().mean(0)
        out = [X[g[0]] + sum((X[q].double().mean(0) - mu0 for q in g[1:]),
                             torch.zeros_like(mu0)).to(X.dtype) for g in groups]
        return torch.stack(out)

    def _compose_scores(self, S: torch.Tensor, groups) -> torch.Tensor:
        """Target scores of combinations from their parts' S [Q, d]: the largest (GIM: the
        probability that any part hits the gene, 1 − Π(1 − π_q))."""
        return torch.stack([S[g].max(0).values for g in groups])

    def target_probabilities(self, perturbations=None, *, smiles=None,
                             features: pd.DataFrame | None = None) -> pd.DataFrame:
        """Target score per (perturbation, gene): a probability for GIM, a score for baselines.

        Rows: ``perturbations`` (default: every one in the feature table) or, with ``smiles=``,
        the SMILES strings (a model fitted with a featurizer).
        """
        self._check_fitted()
        if not self.has_target_scores:
            raise NotImplementedError(f"the {self.name} model gives no target scores")
        if smiles is None:
            perturbations = self._default_perturbations(perturbations)
        req = self._inputs(perturbations, smiles, features)
        with torch.no_grad():
            kw = {"genetic": req.genetic} if self.uses_intended_targets else {}
            S = torch.as_tensor(self._target_scores(req.F, req.parts, **kw))
            if req.composed:
                S = self._compose_scores(S, req.groups)
        return pd.DataFrame(np.asarray(S), index=req.labels, columns=list(self.genes_))

    def _target_scores(self, F, perturbations) -> torch.Tensor:
        raise NotImplementedError

    def target_scores(self, perturbations=None, *, smiles=None,
                      features: pd.DataFrame | None = None) -> pd.DataFrame:
        """Ranking score per (perturbation, gene), higher = more likely a target; what the
        benchmark's target metrics rank by. ``target_probabilities`` for every model but GIM,
        which also orders the genes it did not select by their evidence (``GIM.target_scores``).
        """
        return self.target_probabilities(perturbations, smiles=smiles, features=features)

    def graph(self) -> pd.DataFrame:
        """Weighted adjacency gene × gene, entry (i, j) = strength of edge i → j."""
        self._check_fitted()
        if not self.has_graph:
            raise NotImplementedError(f"the {self.name} model has no gene graph")
        with torch.no_grad():
            G = np.asarray(self._graph())
        return pd.DataFrame(G, index=list(self.genes_),
                            columns=list(self.genes_))

    def _graph(self) -> torch.Tensor:
        raise NotImplementedError

    # ---------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Save to directory ``path`` (safetensors + JSON, written atomically)."""
        self._check_fitted()
        save_checkpoint(path, *self._checkpoint())

    def _checkpoint(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON metadata) of the fitted model: what ``save`` writes."""
        tensors, extra = self._state()
        tensors = {f"model.{k}": v for k, v in tensors.items()}
        tensors["feature_table"] = torch.as_tensor(self.feature_table_.to_numpy())
        tensors["control_cells"] = self.control_cells_
        meta = {
            "model": self.name, "seed": self.seed, "options": self.options,
            "genes": list(self.genes_), "control": self.control_label_,
            "feature_index": list(self.feature_table_.index),
            "feature_columns": [str(c) for c in self.feature_table_.columns],
            "feature_source": self.feature_source_, "extra": extra,
            "featurizer": None if self.featurizer_ is None else self.featurizer_.to_dict(),
            "smiles": {n: c for c, n in self.known_smiles_.items()},
            "intended_targets": {k: list(v) for k, v in self.intended_targets_.items()},
        }
        return tensors, meta

    @classmethod
    def load(cls, path) -> PerturbationModel:
        """Load a model saved with ``save`` (the class is read from the checkpoint)."""
        tensors, meta = load_checkpoint(path)
        if meta.get("model") == "ensemble":
            from .ensemble import Ensemble

            return Ensemble._from_checkpoint(tensors, meta, path)
        return PerturbationModel._from_checkpoint(tensors, meta, path)

    @staticmethod
    def _from_checkpoint(tensors: dict[str, torch.Tensor], meta: dict,
                         path="checkpoint") -> PerturbationModel:
        """The model of ``_checkpoint``'s (tensors, meta); ``tensors`` is consumed."""
        from . import MODELS

        try:
            klass = MODELS[meta["model"]]
            model = klass(seed=meta["seed"], **meta["options"])
            model.genes_ = tuple(meta["genes"])
            model.control_label_ = meta["control"]
            model.feature_table_ = pd.DataFrame(tensors.pop("feature_table").numpy(),
                                                index=meta["feature_index"],
                                                columns=meta["feature_columns"])
            model.feature_source_ = meta["feature_source"]
            model.control_cells_ = tensors.pop("control_cells")
            spec = meta.get("featurizer")  # absent in checkpoints from before SMILES support
            model.featurizer_ = None if spec is None else SmilesFeaturizer.from_dict(spec)
            model.known_smiles_ = {c: n for n, c in meta.get("smiles", {}).items()}
            model.intended_targets_ = {k: tuple(v) for k, v in
                                       meta.get("intended_targets", {}).items()}
            state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
            model._load_state(state, meta["extra"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {path} is corrupt or from another version "
                                  f"({type(exc).__name__}: {exc}): re-save the model") from None
        return model

    def _state(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {}, {}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        pass
