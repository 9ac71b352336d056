"""``peer`` model: a peer tool (CellFlow, STATE, stadion; ``causalpert.peers``) behind the
``PerturbationModel`` interface, fitted and queried through its runner subprocess."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch

from .. import peers
from ..data.contexts import Contexts
from . import register
from .base import PerturbationModel


@register
class PeerModel(PerturbationModel):
    """Fits a peer on the same training cells as every other method and predicts through it.

    ``fit`` writes the cells (``train.h5ad``), the feature table (``features.csv``: every
    perturbation of the fit's table, so a peer that needs the vocabulary up front, like STATE,
    sees the features of perturbations it will be asked about but never their cells) and
    ``config.json`` into a work folder, then runs the peer's ``fit``; ``predict`` writes a
    request and reads the peer's cells back. Combinations are composed by the additive rule.

    Args:
        peer: a name of ``causalpert.peers.PEERS``.
        steps: training steps (None: the runner's default for the data size, stated in
            its file).
        timeout: seconds before a peer command is stopped (None: no limit).
        workdir: where the work folder goes (None: a fresh temporary folder, removed with the
            model).
        options: passed to the runner in ``config.json`` (e.g. ``fail="fit"`` for the fake).
    """

    name = "peer"
    predict_uses_names = True

    def __init__(self, *, seed: int = 0, peer: str = "fake", steps: int | None = None,
                 timeout: float | None = None, workdir: str | None = None, **options):
        peers.get_peer(peer)
        super().__init__(seed=seed, peer=peer, steps=steps, timeout=timeout, workdir=workdir,
                         **options)
        self._tmp: str | None = None
        self.timings_: dict[str, float] = {}
        self.has_graph = "graph" in peers.get_peer(peer).can  # a peer that writes graph.csv

    def __del__(self):
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def peer(self) -> str:
        return self.options["peer"]

    def _workdir(self) -> Path:
        if self.options.get("workdir"):
            path = Path(self.options["workdir"])
            path.mkdir(parents=True, exist_ok=True)
            return path
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix=f"causalpert-{self.peer}-")
        return Path(self._tmp)

    def _run(self, command: str, *args: str) -> dict:
        return peers.run(self.peer, command, self.workdir_, *args,
                         timeout=self.options.get("timeout"))

    def _fit(self, contexts: Contexts, *, adata: ad.AnnData, progress: bool | None) -> None:
        peers.python_of(self.peer)  # the one-line "not installed" error before any work
        self.workdir_ = self._workdir()
        sizes = contexts.sizes.tolist()
        obs = pd.DataFrame({
            "perturbation": np.repeat(contexts.perturbations, sizes),
            "dose": np.repeat(contexts.doses.numpy().astype(np.float64), sizes),
        })
        obs.loc[obs["perturbation"] == self.control_label_, "dose"] = 0.0
        obs.index = obs.index.astype(str)
        x = np.concatenate([contexts.cells(k).numpy() for k in range(contexts.n_contexts)])
        train = ad.AnnData(X=x.astype(np.float32), obs=obs,
                           var=pd.DataFrame(index=list(contexts.genes)))
        train.write_h5ad(self.workdir_ / "train.h5ad")
        self.feature_table_.to_csv(self.workdir_ / "features.csv")
        extra = {k: v for k, v in self.options.items()
                 if k not in ("peer", "steps", "timeout", "workdir")}
        config = {"control": self.control_label_, "seed": self.seed,
                  "steps": self.options.get("steps"), "options": extra,
                  "intended_targets": {k: list(v) for k, v in self.intended_targets_.items()}}
        (self.workdir_ / "config.json").write_text(json.dumps(config, indent=1))
        self.seen_ = {(p, round(float(c), 6)) for p, c in
                      zip(contexts.perturbations, contexts.doses.tolist(), strict=True)}
        timing = self._run("fit")
        self.timings_ = {"peer_fit_seconds": float(timing.get("seconds", np.nan)),
                         "peer_fit_wall_seconds": timing["wall_seconds"]}

    def _check_can_predict(self, perturbations, doses) -> None:
        """A peer without features predicts only perturbations seen in fit, one without dose
        input only the (perturbation, dose) contexts seen in fit; say so (the benchmark then
        leaves that split's cell empty)."""
        can = peers.get_peer(self.peer).can
        seen_names = {p for p, _ in self.seen_}
        for p, c in zip(perturbations, doses.tolist(), strict=True):
            if "features" not in can and p not in seen_names:
                raise ValueError(f"unknown perturbation {p!r}: the {self.peer} peer predicts "
                                 "only perturbations seen in fit")
            if "doses" not in can and (p, round(float(c), 6)) not in self.seen_:
                raise ValueError(f"unknown perturbation {p!r} at dose {c:g}: the {self.peer} "
                                 "peer takes no dose, so it predicts only the (perturbation, "
                                 "dose) contexts seen in fit")

    def _predict(self, F, doses, n_cells, mode, generator, *, perturbations) -> torch.Tensor:
        self._check_can_predict(perturbations, doses)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        request = {"n_cells": int(n_cells), "seed": seed, "perturbations": [
            {"name": str(p), "dose": float(c), "features": [float(v) for v in f]}
            for p, c, f in zip(perturbations, doses.tolist(), F.tolist(), strict=True)]}
        path = self.workdir_ / "request.json"
        path.write_text(json.dumps(request))
        out = self.workdir_ / "prediction.h5ad"
        out.unlink(missing_ok=True)
        timing = self._run("predict", str(path), str(out))
        self.timings_["peer_predict_seconds"] = (self.timings_.get("peer_predict_seconds", 0.0)
                                                 + float(timing.get("seconds", np.nan)))
        pred = ad.read_h5ad(out)
        expected = (len(perturbations) * n_cells, len(self.genes_))
        if pred.shape != expected:
            raise peers.PeerFailedError(f"peer {self.peer!r} returned {pred.shape} cells × genes, "
                                        f"expected {expected}; log: {self.workdir_}/predict.log")
        X = np.asarray(pred.X, dtype=np.float32)
        if not np.isfinite(X).all():
            raise peers.PeerFailedError(f"peer {self.peer!r} predicted NaN or inf; log: "
                                        f"{self.workdir_}/predict.log")
        return torch.from_numpy(X).reshape(len(perturbations), n_cells, -1)

    def _graph(self) -> torch.Tensor:
        G = pd.read_csv(self.workdir_ / "graph.csv", index_col=0)
        return torch.as_tensor(G.loc[list(self.genes_), list(self.genes_)].to_numpy())

    def diagnostics(self) -> dict[str, float]:
        """Seconds the peer reported for its own work (``peer_fit_seconds``) next to the
        subprocess wall time, start-up and import included (``peer_fit_wall_seconds``)."""
        return dict(self.timings_)

    def save(self, path) -> None:
        raise NotImplementedError("peer models are not saved (their state is the peer's own "
                                  "format); refit it, or keep its work folder with workdir=")
