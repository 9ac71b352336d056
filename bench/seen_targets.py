"""How well |expected effect| separates true from spurious targets among the pairs GIM
selects (π > 0.5) for training perturbations — the label-free handle for calibrating seen
drugs' π (issue 13): one default GIM fit on paper-synthetic, the share of selected pairs that
are true targets and the AUROC of |effect| among them.

    OMP_NUM_THREADS=1 python bench/seen_targets.py [--sim linear] [--seed 0]     # ≈ 2 min

Two label-free recalibrations it also tries (session 12; neither separates them):

- removal evidence: for each selected pair (p, j), the KDS drop from re-adding gene j's best
  constant shift after removing it from p's mask (``core.kds_shift_gain`` on p's top-dose
  context, the refitted network), against the same score for the genes p did not select
  (the null: ``target_evidence_``). A spurious target that the fitted network cannot do
  without is "supported" whatever the truth;
- self-simulation (a parametric bootstrap): cells of the same design (control + every
  training context, same counts) predicted by the fit, whose targets are then known (its MAP
  masks), refitted; the refit's reliability is the map a recalibration would apply.
"""

from __future__ import annotations

import argparse
import copy

import anndata as ad
import numpy as np
import torch

import causalpert as cp
from causalpert.benchmark.protocols import paper_synthetic
from causalpert.core import Interventions, intervened_drift, kds_shift_gain
from causalpert.metrics import expected_calibration_error, target_auroc
from causalpert.models.gim import _evidence_blocks, _top_dose_contexts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", default="linear")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    pdata = paper_synthetic(sim=args.sim, seed=args.seed)
    model = RemovalGIM(causal=args.sim, seed=args.seed).fit(pdata.train, progress=False,
                                                            **pdata.fit_kwargs)
    seen = pdata.target_sets["id"]
    pi = model.target_probabilities(seen).to_numpy()
    truth = pdata.truth_targets.loc[seen].to_numpy().astype(bool)
    effect = np.abs(model.effects(seen).drop(columns="dose").to_numpy())
    sel = pi > 0.5
    print(f"selected pairs {int(sel.sum())}, true share {truth[sel].mean():.3f}, AUROC of "
          f"|effect| among them {target_auroc(effect[sel], truth[sel]):.3f}")
    # where the spurious ones sit: next to a true target of the same perturbation?
    adj = np.asarray(pdata.true_graph).astype(bool)  # adj[i, j]: edge i → j
    false = np.argwhere(sel & ~truth)
    child = sum(bool(adj[truth[p], j].any()) for p, j in false)
    parent = sum(bool(adj[j, truth[p]].any()) for p, j in false)
    print(f"false selected {len(false)}: child of a true target {child}, parent of one "
          f"{parent}; median |effect| true {np.median(effect[sel & truth]):.2f}, false "
          f"{np.median(effect[sel & ~truth]):.2f}; median π false "
          f"{np.median(pi[sel & ~truth]):.4f}")

    removal = model.removal_.numpy()[[model.seen_.index(p) for p in seen]]
    null = model.target_evidence(seen).to_numpy()[~sel]
    print(f"removal evidence: AUROC among selected {target_auroc(removal[sel], truth[sel]):.3f}"
          f" (|effect|: above); median true {np.median(removal[sel & truth]):.4f}, false "
          f"{np.median(removal[sel & ~truth]):.4f}; null (unselected genes) median "
          f"{np.median(null):.5f}, max {null.max():.4f}; false pairs above the null's max "
          f"{int((removal[sel & ~truth] > null.max()).sum())} of {int((sel & ~truth).sum())}")
    self_simulation(model, pdata, seen, pi, truth, args)


class RemovalGIM(cp.GIM):
    """GIM that also keeps ``removal_`` [P, d]: the score-test drop of each selected gene
    re-added after its removal from the mask (NaN for unselected genes)."""

    def _fit_target_evidence(self, z, pert, pidx, Fz, doses):
        super()._fit_target_evidence(z, pert, pidx, Fz, doses)
        g = torch.Generator().manual_seed(self.seed)
        origin = self._activity_origin().double()
        drift = copy.deepcopy(self.drift).double()
        s2 = torch.exp(2 * drift.log_sigma)[None]
        D = torch.full((len(self.seen_), z.n_genes), float("nan"), dtype=torch.float64)
        with torch.no_grad():
            for p, k in _top_dose_contexts(pert, pidx, doses).items():
                x = _evidence_blocks(z.cells(k), self.config.evidence_cells, g)
                blocks = len(x)
                logits, u, _ = self.net(pidx[[k]], doses[[k]])
                mask = (torch.sigmoid(logits[0]) > 0.5).double()
                for j in torch.nonzero(mask).flatten().tolist():
                    m = mask.clone()
                    m[j] = 0
                    iv = Interventions(m.expand(blocks, -1), u.double().expand(blocks, -1))
                    f = intervened_drift(drift, x, iv, origin)
                    gain, _ = kds_shift_gain(x, f, s2.expand(blocks, -1),
                                             bandwidth=self.bandwidth_, pooled=True)
                    D[p, j] = gain[0, j]
        self.removal_ = D


def self_simulation(model, pdata, seen, pi, truth, args) -> None:
    train = pdata.train
    obs = train.obs
    parts = [train[(obs["perturbation"] == "control").to_numpy()]]
    contexts = obs[obs["perturbation"] != "control"].groupby(
        ["perturbation", "dose"], observed=True).size()
    for i, ((p, dose), n) in enumerate(contexts.items()):
        parts.append(model.predict([p], doses=[float(dose)], n_cells=int(n),
                                   seed=args.seed * 10_000 + i))
    sim = ad.concat([ad.AnnData(X=np.asarray(a.X, dtype=np.float32),
                                obs=a.obs[["perturbation", "dose"]].astype(
                                    {"perturbation": str})) for a in parts])
    sim.obs_names_make_unique()
    sim.uns["perturbation_features"] = train.uns["perturbation_features"]
    refit = cp.GIM(causal=args.sim, seed=args.seed + 100).fit(sim, progress=False,
                                                              **pdata.fit_kwargs)
    sim_pi = refit.target_probabilities(seen).to_numpy().ravel()
    sim_truth = (pi > 0.5).ravel()  # the simulated world's targets: the fit's MAP masks
    ece = expected_calibration_error
    print(f"self-simulation: ECE of the refit against its known targets "
          f"{ece(sim_pi, sim_truth):.3f}; of the fit against the real truth "
          f"{ece(pi.ravel(), truth.ravel()):.3f}; π > 0.9 true: refit "
          f"{sim_truth[sim_pi > 0.9].mean():.3f}, fit {truth.ravel()[pi.ravel() > 0.9].mean():.3f}")


if __name__ == "__main__":
    main()
