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
from ..data.prepare import prepare
from ..data.smiles import SmilesFeaturizer, resolve_featurizer, smiles_inputs
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .threads import torch_threads

PREDICT_MODES = ("map", "mean", "sample")


def broadcast_doses(doses, n: int) -> np.ndarray:
    """One finite dose ≥ 0 per perturbation [n] from a scalar or a length-n sequence."""
    try:
        out = np.array(np.broadcast_to(np.asarray(doses, dtype=np.float64), (n,)))
    except ValueError:
        raise ValueError(f"give one dose for all or one per perturbation ({n}), got "
                         f"{np.shape(doses)}") from None
    if not np.isfinite(out).all() or (out < 0).any():
        raise ValueError("doses must be finite and ≥ 0")
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

    def __init__(self, *, seed: int = 0, **options):
        self.seed = seed
        self.options = options
        self.genes_: tuple[str, ...] | None = None
        self.featurizer_: SmilesFeaturizer | None = None
        self.known_smiles_: dict[str, str] = {}

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
        """
        contexts = prepare(adata, perturbation_key=perturbation_key, dose_key=dose_key,
                           control=control, layer=layer)
        perts = [p for k, p in enumerate(contexts.perturbations) if k != contexts.control]
        self.featurizer_, features, self.known_smiles_ = resolve_featurizer(
            adata, featurizer, features)
        table, source = resolve_features(adata, features, perts)
        self.feature_table_, self.feature_source_ = table, source
        self.genes_ = contexts.genes
        self.control_label_ = control
        self.control_cells_ = contexts.cells(contexts.control).clone()
        F = torch.zeros(contexts.n_contexts, table.shape[1])
        for k, p in enumerate(contexts.perturbations):
            if k != contexts.control:
                F[k] = torch.as_tensor(table.loc[p].to_numpy(), dtype=torch.float32)
        torch.manual_seed(self.seed)
        self._fit(contexts.with_features(F), adata=adata, progress=progress)
        return self

    def _fit(self, contexts: Contexts, *, adata: ad.AnnData, progress: bool | None) -> None:
        """Fit on ``contexts``, which ``fit`` made for this call only: a model may overwrite
        their cells (e.g. standardise in place) to save a copy of X."""
        raise NotImplementedError

    # ---------------------------------------------------------------- inputs
    def _check_fitted(self) -> None:
        if self.genes_ is None:
            raise NotFittedError(f"{self.name} model is not fitted: call model.fit(adata) first")

    def _features_for(self, perturbations, features: pd.DataFrame | None) -> torch.Tensor:
        """Feature rows [P, p] for ``perturbations`` (user table first, then the fit table)."""
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
            else:
                hint = ("this model was fitted with one-hot features, so it can only predict "
                        "perturbations seen in fit" if self.feature_source_ == "one-hot"
                        else "pass its features with features=DataFrame(..., index=[name])")
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

    def _inputs(self, perturbations, smiles, features) -> tuple[list[str], list[str], torch.Tensor]:
        """(labels, names for ``_predict``, features [P, p]) from names or SMILES strings."""
        if smiles is None:
            names = [str(p) for p in perturbations]
            return names, names, self._features_for(names, features)
        if perturbations is not None or features is not None:
            raise ValueError("pass either perturbation names (with optional features=) or "
                             "smiles=, not both")
        if self.featurizer_ is None:
            raise ValueError("this model was fitted without a SMILES featurizer; refit with "
                             "fit(..., featurizer=SmilesFeaturizer()) or pass perturbation names")
        labels, names, F = smiles_inputs(self.featurizer_, smiles, self.known_smiles_)
        return labels, names, torch.as_tensor(F, dtype=torch.float32)

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

        Returns:
            AnnData (P · n_cells) × genes with ``obs["perturbation"]`` (the name, or the SMILES
            string as given) and ``obs["dose"]``.
        """
        self._check_fitted()
        if perturbations is None and smiles is None:
            raise ValueError("pass the perturbations to predict (names) or smiles=")
        if mode not in PREDICT_MODES:
            raise ValueError(f"mode must be one of {PREDICT_MODES}, got {mode!r}")
        if n_cells < 1:
            raise ValueError(f"n_cells must be ≥ 1, got {n_cells}")
        perturbations, names, F = self._inputs(perturbations, smiles, features)
        doses = broadcast_doses(doses, len(perturbations))
        g = torch.Generator().manual_seed(self.seed if seed is None else seed)
        with torch.no_grad(), torch_threads():
            kw = {"perturbations": names} if self.predict_uses_names else {}
            X = self._predict(F, torch.as_tensor(doses, dtype=torch.float32), n_cells, mode, g,
                              **kw)
        X = np.asarray(X, dtype=np.float32).reshape(-1, len(self.genes_))
        obs = pd.DataFrame({
            "perturbation": pd.Categorical(np.repeat(perturbations, n_cells)),
            "dose": np.repeat(doses, n_cells),
        }, index=[f"pred_{i}" for i in range(len(X))])
        return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=list(self.genes_)))

    def _predict(self, F, doses, n_cells, mode, generator) -> torch.Tensor:
        raise NotImplementedError

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
        labels, names, F = self._inputs(perturbations, smiles, features)
        with torch.no_grad():
            S = self._target_scores(F, names)
        return pd.DataFrame(np.asarray(S), index=labels, columns=list(self.genes_))

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
        }
        save_checkpoint(path, tensors, meta)

    @classmethod
    def load(cls, path) -> PerturbationModel:
        """Load a model saved with ``save`` (the class is read from the checkpoint)."""
        from . import MODELS

        tensors, meta = load_checkpoint(path)
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
